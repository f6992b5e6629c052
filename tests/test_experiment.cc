// test_experiment.cc — the one experiment runner (host/experiment.c) behind train, compare and sweep:
// a process killed (-9) at random points and resumed, as often as it takes, ends with runs.csv and
// curves.csv identical to an uninterrupted run's (the SPS timing rows aside); SIGINT and SIGTERM
// stop every command with exit 130 and a checkpoint it resumes from; a second process on the same
// folder is refused and the first's results stay intact; a finished folder resumes to "complete";
// and forged plan, checkpoint and rows files, their checksums recomputed, are refused, never trusted.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "host/checkpoint.h"
#include "host/experiment.h"
#include "host/fleet.h"
#include "test_util.h"

namespace {

std::string tmp_dir(const std::string &tag) {
    const std::string d = ::testing::TempDir() + "qfleet_exp_" + tag + "_" + std::to_string(getpid());
    std::system(("rm -rf " + d).c_str());
    return d;
}

bool exists(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

std::string read_file(const std::string &p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

std::string no_sps(const std::string &t) {
    std::stringstream in(t), out;
    for (std::string line; std::getline(in, line);)
        if (line.find(",SPS,") == std::string::npos) out << line << "\n";
    return out.str();
}

std::vector<std::string> split_words(const std::string &s) {
    std::stringstream in(s);
    std::vector<std::string> w;
    for (std::string t; in >> t;) w.push_back(t);
    return w;
}

// Start `qfleet ARGS` in the background (output discarded); returns its pid.
pid_t spawn(const std::string &args) {
    const std::vector<std::string> words = split_words(args);
    const pid_t pid = fork();
    if (pid == 0) {
        std::vector<char *> argv;
        argv.push_back((char *)QFLEET_BIN);
        for (const std::string &w : words) argv.push_back((char *)w.c_str());
        argv.push_back(nullptr);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
        execv(QFLEET_BIN, argv.data());
        _exit(127);
    }
    return pid;
}

// Wait until path exists (true) or the child exits first (false), for at most 120 s.
bool wait_for(pid_t pid, const std::string &path) {
    for (int i = 0; i < 12000; i++) {
        if (exists(path)) return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return false;
        usleep(10000);
    }
    return false;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The three commands, each sized to take about a second uninterrupted on a 2-core CPU, with several
// fleets (compare: one per size; sweep: max_runs splits the points) and a checkpoint at every log
// point (checkpoint_seconds tiny), so that a kill lands in every phase: planning, training, between
// fleets, and while the results are merged.
struct Command {
    const char *name, *args;
};
const Command kCommands[] = {
    {"train", "train backend=cpu env=deep_sea env.size=8 hidden=[] batch=16 learning_starts=16 steps=6000 "
              "log_every=200 explore=bootstrap heads=4 runs=2 seeds=2 checkpoint_seconds=0.0001 --quiet"},
    {"compare", "compare backend=cpu sizes=6,8 episodes=400 seeds=2 explorers=epsilon,bootstrap,count "
                "checkpoint_seconds=0.0001 --quiet"},
    {"sweep", "sweep backend=cpu env=deep_sea env.size=8 hidden=[] batch=16 learning_starts=16 steps=4000 "
              "log_every=200 explore=bootstrap,count lr=0.01,0.03 seeds=2 max_runs=4 checkpoint_seconds=0.0001 "
              "--quiet"},
};

class KillAndResume : public ::testing::TestWithParam<int> {};

// Bytes of curves written so far into dir: its fleet parts, or curves.csv once merged.
size_t curve_bytes(const std::string &dir) {
    struct stat st;
    if (stat((dir + "/curves.csv").c_str(), &st) == 0) return (size_t)st.st_size;
    size_t n = 0;
    for (int k = 1; k <= 16; k++)
        if (stat((dir + "/fleet_" + std::to_string(k) + ".curves").c_str(), &st) == 0) n += (size_t)st.st_size;
    return n;
}

// kill -9 at a random point of the run, resume, kill again..., then resume to the end: the results
// equal the uninterrupted run's. A kill point is a share of the run's progress (the curve bytes it
// has written, against the uninterrupted run's), drawn from a fixed seed, so that it falls where it
// is meant to on a slow or a loaded machine alike: before the folder exists (share 0), mid-fleet,
// between fleets, and while the results are merged (share near 1).
TEST_P(KillAndResume, ResultsEqualAnUninterruptedRun) {
    const Command &c = kCommands[GetParam()];
    const std::string full = tmp_dir(std::string(c.name) + "_full"), cut = tmp_dir(std::string(c.name) + "_cut");
    CliResult r = run_qfleet(std::string(c.args) + " out=" + full);
    ASSERT_EQ(r.code, 0) << r.out;
    const double total = (double)curve_bytes(full);
    std::mt19937 rng(1234u + (unsigned)GetParam());
    std::uniform_real_distribution<double> share(0.0, 1.0);
    const double shares[4] = {0.0, share(rng), share(rng), 0.999};
    int kills = 0;
    for (double sh : shares) {
        const bool started = exists(cut + "/run.words");
        const pid_t pid = spawn(started ? std::string(c.name) + " --resume " + cut + " --quiet"
                                        : std::string(c.args) + " out=" + cut);
        int st = 0;
        bool exited = false;
        for (int i = 0; i < 120000 && (double)curve_bytes(cut) < sh * total; i++) { /* at most 2 minutes */
            if (waitpid(pid, &st, WNOHANG) == pid) {
                exited = true;
                break;
            }
            usleep(1000);
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        kills += WIFSIGNALED(st);
        if (exists(cut + "/runs.csv")) break; /* it finished before the kill */
    }
    if (exists(cut + "/run.words")) {
        r = run_qfleet(std::string(c.name) + " --resume " + cut);
    } else {
        r = run_qfleet(std::string(c.args) + " --overwrite out=" + cut);
    }
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_GE(kills, 2) << "fewer than two kills landed before the end: the test did not test resuming";
    EXPECT_EQ(read_file(full + "/runs.csv"), read_file(cut + "/runs.csv")) << c.name << ": " << kills << " kills";
    EXPECT_EQ(no_sps(read_file(full + "/curves.csv")), no_sps(read_file(cut + "/curves.csv")));
    EXPECT_EQ(read_file(full + "/summary.md"), read_file(cut + "/summary.md"));
    EXPECT_FALSE(exists(cut + "/fleet_1.ckpt")) << "a finished folder keeps no checkpoint";
    EXPECT_FALSE(exists(cut + "/fleet_1.curves")) << "a finished folder keeps no parts";
    // resuming a finished folder says so and trains nothing
    const std::string runs = read_file(cut + "/runs.csv");
    r = run_qfleet(std::string(c.name) + " --resume " + cut);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("is complete"), std::string::npos) << r.out;
    EXPECT_EQ(read_file(cut + "/runs.csv"), runs);
    std::system(("rm -rf " + full + " " + cut).c_str());
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, KillAndResume, ::testing::Values(0, 1, 2),
                         [](const ::testing::TestParamInfo<int> &i) { return std::string(kCommands[i.param].name); });

class Signals : public ::testing::TestWithParam<std::tuple<int, int>> {};

// SIGINT and SIGTERM finish the current step, write a checkpoint and exit 130; --resume finishes
// the run with the same results as an uninterrupted one.
TEST_P(Signals, ExitWith130AndACheckpointThatResumes) {
    const Command &c = kCommands[std::get<0>(GetParam())];
    const int sig = std::get<1>(GetParam());
    const std::string full = tmp_dir(std::string(c.name) + "_sfull"), dir = tmp_dir(std::string(c.name) + "_sig");
    ASSERT_EQ(run_qfleet(std::string(c.args) + " out=" + full).code, 0);
    const pid_t pid = spawn(std::string(c.args) + " out=" + dir);
    ASSERT_TRUE(wait_for(pid, dir + "/fleet_1.ckpt")) << "the run must checkpoint while it trains";
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st)) << "killed by the signal instead of stopping";
    EXPECT_EQ(WEXITSTATUS(st), 130);
    bool any_ckpt = false;
    for (int k = 1; k <= 4; k++) any_ckpt |= exists(dir + "/fleet_" + std::to_string(k) + ".ckpt");
    EXPECT_TRUE(any_ckpt);
    EXPECT_FALSE(exists(dir + "/runs.csv"));
    CliResult r = run_qfleet(std::string(c.name) + " --resume " + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(full + "/runs.csv"), read_file(dir + "/runs.csv"));
    std::system(("rm -rf " + full + " " + dir).c_str());
}

INSTANTIATE_TEST_SUITE_P(EveryCommand, Signals,
                         ::testing::Combine(::testing::Values(0, 1, 2), ::testing::Values(SIGINT, SIGTERM)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>> &i) {
                             return std::string(kCommands[std::get<0>(i.param)].name) +
                                    (std::get<1>(i.param) == SIGINT ? "_SIGINT" : "_SIGTERM");
                         });

// A second process on a folder in use is refused with exit 2, naming the holder; the first goes on
// and its results are those of a run alone.
TEST(Experiment, ASecondProcessOnTheSameFolderIsRefused) {
    const Command c = {"train", "train backend=cpu env=deep_sea env.size=8 hidden=[] batch=16 learning_starts=16 "
                                "steps=40000 log_every=200 explore=bootstrap heads=4 runs=2 seeds=2 "
                                "checkpoint_seconds=0.0001 --quiet"};  // a few seconds: long enough to meet
    const std::string alone = tmp_dir("alone"), dir = tmp_dir("busy");
    ASSERT_EQ(run_qfleet(std::string(c.args) + " out=" + alone).code, 0);
    const pid_t pid = spawn(std::string(c.args) + " out=" + dir);
    ASSERT_TRUE(wait_for(pid, dir + "/fleet_1.curves"));
    for (const std::string &second :
         {std::string(c.args) + " out=" + dir, std::string(c.args) + " --overwrite out=" + dir,
          std::string("train --resume ") + dir, std::string(kCommands[2].args) + " out=" + dir}) {
        CliResult r = run_qfleet(second);
        if (exists(dir + "/runs.csv")) {
            ADD_FAILURE() << "the first process finished before the second started: the machine is too slow to test this";
            break;
        }
        EXPECT_EQ(r.code, 2) << second << "\n" << r.out;
        EXPECT_NE(r.out.find("is in use by another qfleet (pid " + std::to_string(pid)), std::string::npos)
            << second << "\n" << r.out;
    }
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    EXPECT_EQ(read_file(alone + "/runs.csv"), read_file(dir + "/runs.csv"));
    std::system(("rm -rf " + alone + " " + dir).c_str());
}

// A folder without a valid plan is not resumed; a new run into a folder with results is refused.
TEST(Experiment, FoldersWithoutAPlanOrWithResultsAreRefused) {
    const Command &c = kCommands[0];
    const std::string dir = tmp_dir("plan");
    const pid_t pid = spawn(std::string(c.args) + " out=" + dir);
    ASSERT_TRUE(wait_for(pid, dir + "/fleet_1.ckpt"));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    expect_cli(std::string(c.args) + " out=" + dir, 2, "already holds a stopped `train` run; resume it with `qfleet train --resume");
    const std::string plan = read_file(dir + "/plan.bin");
    std::remove((dir + "/plan.bin").c_str());
    expect_cli("train --resume " + dir, 2, "has no plan.bin");
    std::ofstream(dir + "/plan.bin", std::ios::binary) << plan.substr(0, plan.size() - 8);
    expect_cli("train --resume " + dir, 2, "corrupted or truncated");
    // and it does not advise removing it (a missing plan.bin cannot be resumed either): a new folder
    expect_cli("train --resume " + dir, 2, "run the experiment again into a new out= folder");
    std::ofstream(dir + "/plan.bin", std::ios::binary) << plan;
    expect_cli("--resume " + dir, 0, "");  // the main job's form resumes the folder's own command
    EXPECT_TRUE(exists(dir + "/runs.csv"));
    std::system(("rm -rf " + dir).c_str());
}

// ---- forged files: valid checksums, fields out of range --------------------------------------------

struct FileImage {
    qf_file_header h;
    std::string payload;
};

FileImage load(const std::string &dir, const char *name, uint32_t kind, uint32_t fleet) {
    FileImage im;
    char *p = nullptr;
    size_t n = 0;
    char err[1024];
    // the hash is whatever the file says: read the header first
    std::string raw = read_file(dir + "/" + name);
    EXPECT_GE(raw.size(), sizeof(qf_file_header));
    std::memcpy(&im.h, raw.data(), sizeof im.h);
    EXPECT_EQ(qf_file_read(dir.c_str(), name, kind, im.h.hash, fleet, &im.h, &p, &n, err, sizeof err), 0) << err;
    im.payload.assign(p, n);
    free(p);
    return im;
}

// Write im back with its checksum recomputed (what a forger does).
void store(const std::string &dir, const char *name, FileImage im) {
    std::vector<const void *> ptr;
    std::vector<size_t> bytes;
    size_t off = 0;
    for (uint32_t i = 0; i < im.h.n_parts; i++) {
        ptr.push_back(im.payload.data() + off);
        bytes.push_back((size_t)im.h.part[i]);
        off += (size_t)im.h.part[i];
    }
    ASSERT_EQ(qf_file_write(dir.c_str(), name, &im.h, (int)im.h.n_parts, ptr.data(), bytes.data()), 0);
}

// Each forged field is refused with a clear message (exit 1 or 2), never trusted and never a crash
// (ASan runs this test too); the genuine file resumes afterwards.
TEST(Experiment, ForgedFilesWithRecomputedChecksumsAreRefused) {
    const std::string dir = tmp_dir("forge");
    // a sweep of two fleets, killed mid-way in its second fleet: plan, rows of fleet 1, checkpoint of 2
    const pid_t pid = spawn(std::string(kCommands[2].args) + " out=" + dir);
    ASSERT_TRUE(wait_for(pid, dir + "/fleet_2.ckpt")) << "the sweep must reach its second fleet";
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_TRUE(exists(dir + "/fleet_1.rows"));
    const std::string cmd = "sweep --resume " + dir;
    auto refused = [&](const std::string &what) {
        CliResult r = run_qfleet(cmd);
        EXPECT_TRUE(r.code == 1 || r.code == 2) << what << ": exit " << r.code << "\n" << r.out;
        EXPECT_EQ(r.out.find("Segmentation"), std::string::npos) << what;
        EXPECT_EQ(r.out.find("AddressSanitizer"), std::string::npos) << what << "\n" << r.out;
        EXPECT_FALSE(exists(dir + "/runs.csv")) << what << ": a forged file was trusted\n" << r.out;
    };
    // the plan
    const FileImage plan = load(dir, "plan.bin", QF_FILE_PLAN, 0);
    {
        FileImage f = plan;
        f.h.meta[1] = 1000000;  // fleets
        store(dir, "plan.bin", f);
        refused("plan: fleet count");
        f = plan;
        int64_t *order = (int64_t *)&f.payload[0];
        order[1] = order[0];  // a point twice
        store(dir, "plan.bin", f);
        refused("plan: order not a permutation");
        f = plan;
        order = (int64_t *)&f.payload[0];
        order[0] = -5;
        store(dir, "plan.bin", f);
        refused("plan: point index");
        f = plan;
        int64_t *fl = (int64_t *)&f.payload[(size_t)f.h.part[0]];
        fl[1] = 1000000;  // fleet 1's count
        store(dir, "plan.bin", f);
        refused("plan: fleet size");
        store(dir, "plan.bin", plan);
    }
    // the finished fleet's rows
    const FileImage rows = load(dir, "fleet_1.rows", QF_FILE_ROWS, 0);
    {
        FileImage f = rows;
        qf_file_header h = f.h;
        h.meta[0] = 999;
        f.h = h;
        store(dir, "fleet_1.rows", f);
        refused("rows: run count");
        f = rows;
        int64_t point = 1 << 30;
        std::memcpy(&f.payload[offsetof(qf_exp_run, point)], &point, sizeof point);  // row 0's point
        store(dir, "fleet_1.rows", f);
        refused("rows: point index");
        f = rows;
        int32_t seed = 77;
        std::memcpy(&f.payload[offsetof(qf_exp_run, seed_index)], &seed, sizeof seed);  // row 0's seed index
        store(dir, "fleet_1.rows", f);
        refused("rows: seed index");
        store(dir, "fleet_1.rows", rows);
    }
    // the checkpoint
    const FileImage ck = load(dir, "fleet_2.ckpt", QF_FILE_CKPT, 1);
    {
        FileImage f = ck;
        f.h.meta[0] = ck.h.meta[0] + 1000000;  // log points (sizes then disagree)
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: log point count");
        f = ck;
        f.h.meta[1] = 3;  // runs
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: run count");
        f = ck;
        f.h.meta[2] = 1ull << 40;  // curve part longer than the file
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: curve part length");
        f = ck;
        // the first log point's step beyond the fleet's steps (the payload is unaligned: memcpy)
        const size_t at = (size_t)f.h.part[0];
        int64_t step = 1ll << 50;
        std::memcpy(&f.payload[at + offsetof(qf_log_point, step)], &step, sizeof step);
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: log point step");
        f = ck;
        int32_t status = 9;
        std::memcpy(&f.payload[at + offsetof(qf_log_point, status)], &status, sizeof status);
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: log point status");
        f = ck;
        f.h.fleet = 0;  // fleet 1's checkpoint under fleet 2's name
        store(dir, "fleet_2.ckpt", f);
        refused("checkpoint: another fleet's");
        store(dir, "fleet_2.ckpt", ck);
    }
    CliResult r = run_qfleet(cmd);  // the genuine files resume
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(exists(dir + "/runs.csv"));
    std::system(("rm -rf " + dir).c_str());
}

}  // namespace

namespace {

// bandits: SIGTERM (exit 130, checkpoint) and kill -9 at random points, then --resume: curves.csv
// identical to an uninterrupted run's (the pull counts add up to the step in every instance, which
// the resume checks).
TEST(Experiment, BanditsStopAndResumeToTheSameCurves) {
    const std::string args = "bandits backend=cpu env.probs=[0.9,0.8,0.7] envs=256 steps=3000 log_every=100 "
                             "checkpoint_seconds=0.0001";
    const std::string full = tmp_dir("bfull"), cut = tmp_dir("bcut"), sig = tmp_dir("bsig");
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(run_qfleet(args + " out=" + full).code, 0);
    const double T = seconds_since(t0);
    // SIGTERM
    pid_t pid = spawn(args + " out=" + sig);
    ASSERT_TRUE(wait_for(pid, sig + "/bandits.ckpt"));
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 130);
    CliResult r = run_qfleet("bandits --resume " + sig);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(full + "/curves.csv"), read_file(sig + "/curves.csv"));
    // kill -9, several times
    std::mt19937 rng(99u);
    std::uniform_real_distribution<double> share(0.05, 0.9);
    for (int k = 0; k < 3 && !exists(cut + "/runs.csv"); k++) {
        // once run.words is written the folder is the experiment's: resumed (from step 0 when it was
        // killed before its first checkpoint)
        pid = spawn(exists(cut + "/run.words") ? "bandits --resume " + cut : args + " out=" + cut);
        std::this_thread::sleep_for(std::chrono::duration<double>(share(rng) * T));
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    if (!exists(cut + "/runs.csv"))
        r = exists(cut + "/run.words") ? run_qfleet("bandits --resume " + cut) : run_qfleet(args + " out=" + cut);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(full + "/curves.csv"), read_file(cut + "/curves.csv"));
    EXPECT_EQ(read_file(full + "/runs.csv"), read_file(cut + "/runs.csv"));
    // a forged checkpoint (pull counts that do not add up to its step) is refused
    pid = spawn(args + " out=" + sig + "2");
    ASSERT_TRUE(wait_for(pid, sig + "2/bandits.ckpt"));
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FileImage ck = load(sig + "2", "bandits.ckpt", QF_FILE_CKPT, 0);
    ck.h.meta[0] += 1;  // the step
    store(sig + "2", "bandits.ckpt", ck);
    expect_cli("bandits --resume " + sig + "2", 1, "does not match this run");
    std::system(("rm -rf " + full + " " + cut + " " + sig + " " + sig + "2").c_str());
}

// irl: the same through the runner's services. SIGTERM (exit 130, irl.ckpt), kill -9 at random
// points, then --resume: curves.csv, runs.csv, summary.md and reward_map.csv identical to an
// uninterrupted run's (the iterations are deterministic on the CPU backend); a forged checkpoint is
// refused; a complete folder resumes to nothing; infer resumes the same way.
TEST(Experiment, IrlStopAndResumeToTheSameResults) {
    const std::string args = "irl backend=cpu threads=1 env=gridworld env.size=6 horizon=12 demos=4,16 lrs=0.2 "
                             "seeds=3 iters=150 log_every=5 checkpoint_seconds=0.0001";
    const std::string full = tmp_dir("ifull"), cut = tmp_dir("icut"), sig = tmp_dir("isig");
    const char *files[] = {"curves.csv", "runs.csv", "summary.md", "reward_map.csv"};
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(run_qfleet(args + " out=" + full).code, 0);
    const double T = seconds_since(t0);
    pid_t pid = spawn(args + " out=" + sig);
    ASSERT_TRUE(wait_for(pid, sig + "/irl.ckpt"));
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 130);
    EXPECT_FALSE(exists(sig + "/runs.csv"));
    EXPECT_TRUE(exists(sig + "/fleet_1.curves")) << "the log points reached are kept";
    CliResult r = run_qfleet("irl --resume " + sig);
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char *f : files) EXPECT_EQ(read_file(full + "/" + f), read_file(sig + "/" + f)) << f;
    EXPECT_FALSE(exists(sig + "/irl.ckpt"));
    EXPECT_FALSE(exists(sig + "/fleet_1.curves"));
    r = run_qfleet("irl --resume " + sig);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("is complete"), std::string::npos) << r.out;
    expect_cli(args + " out=" + sig, 2, "already holds results");
    std::mt19937 rng(7u);
    std::uniform_real_distribution<double> share(0.05, 0.9);
    for (int k = 0; k < 3 && !exists(cut + "/runs.csv"); k++) {
        pid = spawn(exists(cut + "/run.words") ? "irl --resume " + cut : args + " out=" + cut);
        std::this_thread::sleep_for(std::chrono::duration<double>(share(rng) * T));
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    }
    if (!exists(cut + "/runs.csv"))
        r = exists(cut + "/run.words") ? run_qfleet("irl --resume " + cut) : run_qfleet(args + " out=" + cut);
    EXPECT_EQ(r.code, 0) << r.out;
    for (const char *f : files) EXPECT_EQ(read_file(full + "/" + f), read_file(cut + "/" + f)) << f;
    // forged checkpoints: an iteration past the end, a negative second moment (checksums recomputed)
    for (int forge = 0; forge < 2; forge++) {
        const std::string d = sig + "f" + std::to_string(forge);
        pid = spawn(args + " out=" + d);
        ASSERT_TRUE(wait_for(pid, d + "/irl.ckpt"));
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        FileImage ck = load(d, "irl.ckpt", QF_FILE_CKPT, 0);
        if (forge == 0) {
            ck.h.meta[0] = 151;
        } else {
            double v = -1.0;
            std::memcpy(&ck.payload[ck.h.part[0] + ck.h.part[1]], &v, sizeof v);
        }
        store(d, "irl.ckpt", ck);
        expect_cli("irl --resume " + d, 1, "does not match this experiment");
        std::system(("rm -rf " + d).c_str());
    }
    // infer: one exact computation; --resume of a complete folder runs nothing
    const std::string inf = tmp_dir("infer");
    ASSERT_EQ(run_qfleet("infer backend=cpu env=gridworld temperatures=1,2 out=" + inf).code, 0);
    r = run_qfleet("infer --resume " + inf);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("is complete"), std::string::npos) << r.out;
    std::system(("rm -rf " + full + " " + cut + " " + sig + " " + inf).c_str());
}

}  // namespace

namespace {

// A full disk while the fleets' parts are merged (here a file-size limit that each fleet's curve part
// fits under and the merged curves.csv does not): exit 1, no runs.csv (so the folder is not taken
// for complete), and --resume, once there is room, finishes the merge with the uninterrupted results.
TEST(Experiment, AFullDiskDuringTheMergeLeavesAFolderResumeFinishes) {
    const std::string args = "sweep backend=cpu env=deep_sea env.size=6 hidden=[] batch=16 learning_starts=16 "
                             "steps=3000 log_every=100 lr=0.01,0.03 seeds=2 max_runs=2 --quiet";
    const std::string full = tmp_dir("mfull"), dir = tmp_dir("merge");
    ASSERT_EQ(run_qfleet(args + " out=" + full).code, 0);
    const size_t total = read_file(full + "/curves.csv").size();
    ASSERT_GT(total, 20000u);
    // two fleets of equal size: each part is about total / 2; the limit lies between
    const size_t limit_kib = (size_t)(0.8 * (double)total) / 1024;
    const std::string cmd = "bash -c 'ulimit -f " + std::to_string(limit_kib) + "; trap \"\" XFSZ; " +
                            std::string(QFLEET_BIN) + " " + args + " out=" + dir + "' 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
    const int st = pclose(p);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 1) << out;
    EXPECT_NE(out.find("cannot write " + dir + "/curves.csv"), std::string::npos) << out;
    EXPECT_FALSE(exists(dir + "/runs.csv")) << "a folder without its curves must not look complete";
    EXPECT_TRUE(exists(dir + "/fleet_1.curves") && exists(dir + "/fleet_2.curves")) << "the parts are kept";
    CliResult r = run_qfleet("sweep --resume " + dir);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(full + "/runs.csv"), read_file(dir + "/runs.csv"));
    EXPECT_EQ(no_sps(read_file(full + "/curves.csv")), no_sps(read_file(dir + "/curves.csv")));
    std::system(("rm -rf " + full + " " + dir).c_str());
}

// --overwrite replaces a folder's results and everything derived from them: plot.py's and
// plot_scaling.py's pictures, qfleet fit's tables, tensorboard.py's event files (a new user found a
// replaced folder whose tensorboard/ still held the old experiment's runs).
TEST(Experiment, OverwriteRemovesWhatWasDerivedFromTheOldResults) {
    const std::string dir = tmp_dir("overwrite");
    const std::string args = "train backend=cpu env=chain env.size=4 steps=200 log_every=100 hidden=[]";
    ASSERT_EQ(run_qfleet(args + " out=" + dir).code, 0);
    std::system(("mkdir -p " + dir + "/tensorboard/old_run && touch " + dir + "/tensorboard/old_run/events.out.tfevents.1 " +
                 dir + "/fit.csv " + dir + "/cells.csv " + dir + "/scaling_law.png " + dir + "/true_regret.png")
                    .c_str());
    ASSERT_EQ(run_qfleet(args + " --overwrite out=" + dir).code, 0);
    for (const char *f : {"tensorboard", "fit.csv", "cells.csv", "scaling_law.png", "true_regret.png"})
        EXPECT_FALSE(exists(dir + "/" + f)) << f << " of the old results is still there";
    EXPECT_TRUE(exists(dir + "/runs.csv"));
    std::system(("rm -rf " + dir).c_str());
}

// --dry-run of train and compare estimates the time as sweep's does (a new user found none), and
// trains nothing.
TEST(Experiment, DryRunEstimatesTheTimeForEveryCommand) {
    for (const char *cmd : {"train env=chain env.size=5 steps=2000 runs=2 backend=cpu --dry-run",
                            "compare sizes=4,5 explorers=epsilon,bootstrap seeds=2 episodes=20 backend=cpu --dry-run"}) {
        CliResult r = run_qfleet(cmd);
        EXPECT_EQ(r.code, 0) << cmd << "\n" << r.out;
        EXPECT_NE(r.out.find("estimated time: "), std::string::npos) << cmd << "\n" << r.out;
        EXPECT_NE(r.out.find("nothing was trained"), std::string::npos) << cmd << "\n" << r.out;
    }
}

// Inputs a new user tried that would have done nothing or twice the work: refused with one line.
TEST(Experiment, KeysThatWouldDoNothingOrRepeatAreRefused) {
    expect_cli("sweep runs=3 lr=0.1,0.2 --dry-run", 2, "the key runs is not used by `qfleet sweep`");
    expect_cli("sweep lr=0.1,0.1 --dry-run", 2, "lr names '0.1' twice");
    expect_cli("sweep explore=epsilon,bootstrap,epsilon --dry-run", 2, "names 'epsilon' twice");
    expect_cli("compare sizes=6,6 --dry-run", 2, "sizes names 6 twice");
    expect_cli("train steps=0 --load /tmp/qfleet_no_such.npy out=/tmp/qfleet_never_written", 2,
               "steps=0 evaluates the loaded parameters and writes no results folder");
    EXPECT_FALSE(exists("/tmp/qfleet_never_written"));
}

}  // namespace

namespace {

// --load checks params.json beside the .npy: networks of another env (same float count) are refused.
TEST(Experiment, LoadRefusesParametersOfOtherNetworks) {
    const std::string dir = tmp_dir("loadsrc");
    // chain-4 tabular: 4 x 2 weights + 2 biases = 10 floats, as many as cartpole's 4 -> 2 layer
    ASSERT_EQ(run_qfleet("train backend=cpu env=chain env.size=4 hidden=[] steps=300 envs=2 learning_starts=50 "
                         "--quiet out=" + dir).code, 0);
    expect_cli("train backend=cpu env=cartpole hidden=[] steps=0 --load " + dir + "/params.npy", 2,
               "describes other networks than this run's");
    CliResult r = run_qfleet("train backend=cpu env=chain env.size=4 hidden=[] steps=0 --load " + dir + "/params.npy");
    EXPECT_EQ(r.code, 0) << r.out;
    std::system(("rm -rf " + dir).c_str());
}

}  // namespace
