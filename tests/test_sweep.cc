// test_sweep.cc — configuration files and sweeps, through the qfleet binary as a user runs them:
// YAML files give the same configuration as key=value words and the command line overrides them;
// every malformed file or value is refused with file:line, key, value and what is allowed; sweeps
// expand into the right points, pack equal shapes into fleets, draw random axes reproducibly, and
// a run inside a sweep fleet equals the same run trained alone, bit for bit.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

std::string tmp_path(const std::string &name) { return "/tmp/qfleet_sweep_" + std::to_string(getpid()) + "_" + name; }

std::string write_file(const std::string &name, const std::string &text) {
    const std::string p = tmp_path(name);
    std::ofstream(p) << text;
    return p;
}

std::string read_file(const std::string &p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// key=value lines of a results folder's config.txt
std::map<std::string, std::string> config_of(const std::string &dir) {
    std::map<std::string, std::string> m;
    std::ifstream in(dir + "/config.txt");
    for (std::string line; std::getline(in, line);) {
        const size_t eq = line.find('=');
        if (eq != std::string::npos && line[0] != '#') m[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return m;
}

// CSV rows (header first), naive split (the tests' fields have no commas except quoted axis values
// without commas)
std::vector<std::vector<std::string>> csv(const std::string &path) {
    std::vector<std::vector<std::string>> rows;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string tok; std::getline(ss, tok, ',');) {
            if (tok.size() >= 2 && tok.front() == '"' && tok.back() == '"') tok = tok.substr(1, tok.size() - 2);
            f.push_back(tok);
        }
        rows.push_back(f);
    }
    return rows;
}

int column(const std::vector<std::string> &header, const std::string &name) {
    for (size_t i = 0; i < header.size(); i++)
        if (header[i] == name) return (int)i;
    ADD_FAILURE() << "no column " << name;
    return 0;
}

TEST(Config, YamlEqualsWordsAndTheCommandLineWins) {
    const std::string y = write_file("a.yaml",
                                     "# a comment\n"
                                     "env: {name: chain, size: 7}\n"
                                     "hidden: [16, 8]\n"
                                     "lr: 0.003\n"
                                     "explore: bootstrap\n"
                                     "heads: 4\n"
                                     "steps: 20\n");
    const std::string d1 = tmp_path("out1"), d2 = tmp_path("out2"), d3 = tmp_path("out3");
    CliResult a = run_qfleet("train " + y + " backend=cpu out=" + d1);
    ASSERT_EQ(a.code, 0) << a.out;
    CliResult b = run_qfleet("train backend=cpu env=chain env.size=7 hidden=[16,8] lr=0.003 explore=bootstrap "
                             "heads=4 steps=20 out=" + d2);
    ASSERT_EQ(b.code, 0) << b.out;
    auto ca = config_of(d1), cb = config_of(d2);
    ca.erase("out");
    cb.erase("out");
    EXPECT_EQ(ca, cb);
    EXPECT_EQ(ca["env.size"], "7");
    EXPECT_EQ(ca["hidden"], "[16,8]");
    EXPECT_EQ(read_file(d1 + "/runs.csv"), read_file(d2 + "/runs.csv")) << "same configuration, same results";
    CliResult c = run_qfleet("train " + y + " lr=0.02 heads=2 backend=cpu out=" + d3);
    ASSERT_EQ(c.code, 0) << c.out;
    auto cc = config_of(d3);
    EXPECT_EQ(cc["lr"], "0.02");
    EXPECT_EQ(cc["heads"], "2");
    EXPECT_EQ(cc["hidden"], "[16,8]");
    std::system(("rm -rf " + d1 + " " + d2 + " " + d3 + " " + y).c_str());
}

// A 0/1 switch (double_q, policy, rnd_act, ...) takes true and false as 1 and 0, as the env's
// switches do (a new user's `double_q: true` in YAML was refused); anything else is refused in one
// line that says "use 0 or 1".
TEST(Config, SwitchesTakeTrueAndFalse) {
    const std::string y = write_file("switch.yaml", "env: {name: chain, size: 5}\nalpha: 0\ndouble_q: true\nsteps: 20\n");
    const std::string d1 = tmp_path("sw1"), d2 = tmp_path("sw2"), d3 = tmp_path("sw3");
    CliResult a = run_qfleet("train " + y + " backend=cpu out=" + d1);
    ASSERT_EQ(a.code, 0) << a.out;
    CliResult b = run_qfleet("train backend=cpu env=chain env.size=5 alpha=0 double_q=1 steps=20 out=" + d2);
    ASSERT_EQ(b.code, 0) << b.out;
    auto ca = config_of(d1), cb = config_of(d2);
    ca.erase("out");
    cb.erase("out");
    EXPECT_EQ(ca, cb);
    EXPECT_EQ(ca["double_q"], "1");
    CliResult c = run_qfleet("train " + y + " double_q=false backend=cpu out=" + d3);
    ASSERT_EQ(c.code, 0) << c.out;
    EXPECT_EQ(config_of(d3)["double_q"], "0");
    for (const char *word : {"double_q=yes", "double_q=2", "policy=on"}) {
        const std::string bad = word;
        CliResult r = run_qfleet(bad[0] == 'p' ? "solve " + bad : "train " + bad + " alpha=0 steps=5");
        EXPECT_EQ(r.code, 2) << bad << "\n" << r.out;
        EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << bad << "\n" << r.out;
        EXPECT_NE(r.out.find("bad value for " + bad.substr(0, bad.find('=')) + ": '" + bad.substr(bad.find('=') + 1) +
                             "' (a switch: use 0 or 1, or true or false)"), std::string::npos) << r.out;
    }
    const std::string yb = write_file("switch_bad.yaml", "alpha: 0\ndouble_q: yes\n");
    expect_cli("train " + yb + " steps=5", 2, "switch_bad.yaml:2: bad value for double_q: 'yes' (a switch: use 0 or 1");
    std::system(("rm -rf " + d1 + " " + d2 + " " + d3 + " " + y + " " + yb).c_str());
}

TEST(Config, BadFilesNameFileLineKeyValueAndWhatIsAllowed) {
    struct Case {
        std::string text, needle1, needle2;
    } cases[] = {
        {"env: deep_sea\nlr: fast\n", ":2: bad value for lr: 'fast'", "a number in [1e-08, 10]"},
        {"env: deep_sea\n\ncolour: red\n", ":3: unknown key: 'colour'", "help keys"},
        {"env: nope\n", ":1: unknown environment: env=nope", "deep_sea"},
        {"env: deep_sea\nenv.size: 0\n", ":2: bad value for env.size: '0'", "[1, 4096]"},
        {"hidden: [64, 64\n", "did not find expected", ".yaml:"},
        // an unclosed list on the last line: the error names that line (1), not the empty line after
        // the file's last newline that libyaml's mark points at (a new user's finding)
        {"env: deep_sea\nhidden: [64, 64\n", ".yaml:2: did not find expected", "at the end of the file"},
        {"env: deep_sea\nhidden: [64,\n  64\n", ".yaml:3: did not find expected", "(begun on line 2)"},
        {"lr: 0.1\nlr: 0.2\n", ":2: key lr given twice (first at line 1)", ""},
        {"- lr\n- 0.1\n", ":1: the file must be a mapping", "key: value"},
        {"env: {size: {grid: [1, 2]}, name: deep_sea}\n", "nesting deeper", ""},
        {"hidden: [[1], 2]\n", "a list may hold only plain values", ""},
        {"lr: {uniform: 0.1}\n", "takes a list", ""},
        // YAML features the configuration does not use are refused at their line, not dropped (a new
        // user's anchors and merge keys were silently read as nothing)
        {"env: deep_sea\nbase: &b {lr: 0.1}\n", ".yaml:2: YAML anchors (&b) are not supported", ""},
        {"lr: 0.1\neps_end: *x\n", ".yaml:2: YAML aliases (*x) are not supported", ""},
        {"env: deep_sea\nenv:\n  <<: {size: 4}\n", ".yaml:3: YAML merge keys (<<) are not supported", ""},
        {"lr: !!float 0.01\n", ".yaml:1: YAML tags (!!float) are not supported", ""},
        {"env: deep_sea\n\nout: !!binary aGVsbG8=\n", ".yaml:3: YAML tags (!!binary) are not supported", ""},
        {"hidden: !custom [1, 2]\n", ".yaml:1: YAML tags (!custom) are not supported", ""},
    };
    int i = 0;
    for (const Case &c : cases) {
        const std::string y = write_file("bad" + std::to_string(i++) + ".yaml", c.text);
        expect_cli("train " + y + " backend=cpu steps=5", 2, c.needle1);
        if (!c.needle2.empty()) expect_cli("train " + y + " backend=cpu steps=5", 2, c.needle2);
        const std::string out = run_qfleet("train " + y + " backend=cpu steps=5").out;
        EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line:\n" << out;
        std::remove(y.c_str());
    }
    expect_cli("train /nonexistent/x.yaml", 2, "cannot read /nonexistent/x.yaml");
    expect_cli("solve --dry-run", 2, "belong to train, compare and sweep");
    expect_cli("sweep --frobnicate", 2, "unknown option '--frobnicate'");
    expect_cli("sweep 'lr=loguniform(0,1)' --dry-run", 2, "lo > 0");
    expect_cli("sweep 'lr=uniform(1)' --dry-run", 2, "uniform(lo,hi)");
    expect_cli("sweep seeds=1,2 --dry-run", 2, "seeds cannot be swept");
    expect_cli("sweep lr=0.1,0.2 trials=5 --dry-run", 2, "no axis of this sweep is random");
    expect_cli("sweep lr=0.1,zzz --dry-run", 2, "bad value for lr: 'zzz'");
}

// Issue 11: a key is named once per file at any depth (also twice on one line), a list item is
// never empty, a value is never cut, and a directory is not a file.
TEST(Config, RepeatedKeysEmptyItemsAndLongValuesInFiles) {
    struct Case {
        std::string text, needle;
    } cases[] = {
        {"env: {name: chain, size: 3, size: 4}\n", ":1: env: key size given twice (first at line 1)"},
        {"env:\n  name: chain\n  size: 3\n  size: 4\n", ":4: env: key size given twice (first at line 3)"},
        {"{lr: 0.1, lr: 0.2}\n", ":1: key lr given twice (first at line 1)"},
        {"env: {name: chain, size: 3}\nenv.size: 5\n", ":2: key env.size given twice (first at line 1)"},
        {"lr: {grid: [0.1, 0.2], uniform: [0.1, 0.2]}\n", ":1: key lr given twice"},
        {"env: chain\nenv: {name: deep_sea}\n", ":2: key env given twice (first at line 1)"},
        {"hidden: [64, \"\", 64]\n", ":1: hidden: a list item is empty"},
        {"env: bandit\nenv.probs: [0.5, '', 0.5]\n", ":2: env.probs: a list item is empty"},
        {"lr: {grid: [0.1, '']}\n", ":1: lr: a list item is empty"},
    };
    int i = 0;
    for (const Case &c : cases) {
        const std::string y = write_file("rep" + std::to_string(i++) + ".yaml", c.text);
        expect_cli("sweep " + y + " backend=cpu steps=5 --dry-run", 2, c.needle);
        std::remove(y.c_str());
    }
    // a value of 1500 characters (a results folder) is taken whole from a file (was: cut at 999)
    std::string dir = tmp_path("long");
    const std::string top = dir;
    for (int k = 0; k < 15; k++) dir += "/" + std::string(99, 'a' + k);
    const std::string y = write_file("long.yaml", "out: " + dir + "\nsteps: 2\n");
    CliResult r = run_qfleet("train " + y + " backend=cpu");
    ASSERT_EQ(r.code, 0) << r.out.substr(0, 300);
    EXPECT_EQ(config_of(dir)["out"], dir);
    std::system(("rm -rf " + top + " " + y).c_str());
}

// The README's example: a word on the command line replaces the file's axis (was: "bad value for
// alpha: '0,0.5,2,5'"); and `train` says a file's axis belongs to sweep when not overridden.
TEST(Config, ACommandLineWordOverridesTheFilesAxis) {
    const std::string d = tmp_path("override");
    CliResult r = run_qfleet("train " + std::string(QFLEET_SOURCE_DIR) +
                             "/examples/cartpole_temperature.yaml alpha=1 steps=40 log_every=20 backend=cpu out=" + d);
    ASSERT_EQ(r.code, 0) << r.out;
    auto c = config_of(d);
    EXPECT_EQ(c["alpha"], "1");
    EXPECT_EQ(c["env"], "cartpole");
    EXPECT_EQ(c["steps"], "40");
    EXPECT_EQ(c["seeds"], "4") << "the file's other keys stay";
    std::system(("rm -rf " + d).c_str());
    expect_cli("train " + std::string(QFLEET_SOURCE_DIR) + "/examples/cartpole_temperature.yaml steps=40", 2,
               "bad value for alpha: '0,0.5,2,5' (allowed: a number in [0, 1e+06]); a list of values is a sweep axis");
}

// Contradictions are judged per point: an axis value may be fine with one value of another axis
// and not with the next, and a base that needs an axis to be complete is fine.
TEST(Sweep, ContradictionsAreJudgedPerPoint) {
    expect_cli("sweep backend=cpu steps=5 explore=epsilon,boltzmann alpha=0,0.5 --dry-run", 2,
               "sweep point 2 (explore=boltzmann alpha=0): explore=boltzmann samples actions");
    CliResult a = run_qfleet("sweep backend=cpu steps=5 explore=epsilon,boltzmann alpha=0.1,0.5 --dry-run");
    EXPECT_EQ(a.code, 0) << a.out;
    CliResult b = run_qfleet("sweep backend=cpu steps=5 explore=boltzmann alpha=0.1,0.5 --dry-run");
    EXPECT_EQ(b.code, 0) << b.out;
    // a key that some points ignore is fine when another point uses it; refused when none does
    CliResult c = run_qfleet("sweep backend=cpu steps=5 explore=epsilon,bootstrap heads=2,4 --dry-run");
    EXPECT_EQ(c.code, 0) << c.out;
    expect_cli("sweep backend=cpu steps=5 explore=epsilon,rnd heads=2,4 --dry-run", 2,
               "heads is a setting of explore=bootstrap, which no run uses (explore=epsilon): remove heads, or use "
               "explore=bootstrap (in every point of the sweep)");
    CliResult d = run_qfleet("sweep backend=cpu steps=5 tau=0.5,1 target_every=10 --dry-run");
    EXPECT_EQ(d.code, 0) << d.out;
    expect_cli("sweep backend=cpu steps=5 'lr=uniform(0.001,0.01)' tau=0.5,0.8 target_every=10 --dry-run", 2,
               "target_every counts the updates");
}

// Grid values and lists of any length (was: at most 95 characters per value).
TEST(Sweep, LongGridValuesAreTakenWhole) {
    std::string p1 = "[", p2 = "[";
    for (int k = 0; k < 30; k++) {
        p1 += (k ? "," : "") + std::string("0.123456");
        p2 += (k ? "," : "") + std::string("0.654321");
    }
    p1 += "]";
    p2 += "]";
    ASSERT_GT(p1.size(), 200u);
    CliResult r = run_qfleet("sweep backend=cpu env=bandit steps=5 hidden=[4] env.probs=" + p1 + "," + p2 + " --dry-run");
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("2 points x 1 seed = 2 runs"), std::string::npos) << r.out;
}

TEST(Sweep, DryRunExpandsGridsPacksShapesAndKeepsBracketedListsWhole) {
    CliResult a = run_qfleet("sweep backend=cpu env=deep_sea env.size=5 hidden=[] lr=0.001,0.01 "
                             "explore=epsilon,bootstrap,count seeds=2 steps=100 --dry-run");
    ASSERT_EQ(a.code, 0) << a.out;
    EXPECT_NE(a.out.find("6 points x 2 seeds = 12 runs in 1 fleet"), std::string::npos) << a.out;
    EXPECT_NE(a.out.find("nothing was trained"), std::string::npos);
    // sizes differ in shape: one fleet per size; max_runs splits a shape into several fleets
    CliResult b = run_qfleet("sweep backend=cpu env=deep_sea env.size=4,6 hidden=[] lr=0.001,0.01,0.1 seeds=2 "
                             "steps=100 max_runs=4 --dry-run");
    ASSERT_EQ(b.code, 0) << b.out;
    EXPECT_NE(b.out.find("6 points x 2 seeds = 12 runs in 4 fleets"), std::string::npos) << b.out;
    // [0.9,0.8,0.7] is one value, and hidden=[8,8] too: a single point
    CliResult c = run_qfleet("sweep backend=cpu env=bandit env.probs=[0.9,0.8,0.7] hidden=[8,8] steps=50 --dry-run");
    ASSERT_EQ(c.code, 0) << c.out;
    EXPECT_NE(c.out.find("1 point x 1 seed = 1 run in 1 fleet"), std::string::npos) << c.out;
    // nothing written by a dry run
    EXPECT_EQ(c.out.find("results:"), std::string::npos);
}

TEST(Sweep, RandomSearchDrawsWithinBoundsAndReproducibly) {
    const std::string d1 = tmp_path("r1"), d2 = tmp_path("r2"), d3 = tmp_path("r3");
    const std::string args = "sweep backend=cpu env=deep_sea env.size=4 hidden=[] 'lr=loguniform(1e-4,1e-2)' "
                             "'gamma=uniform(0.9,0.99)' trials=6 steps=40 learning_starts=8 batch=8 --quiet out=";
    ASSERT_EQ(run_qfleet(args + d1).code, 0);
    ASSERT_EQ(run_qfleet(args + d2).code, 0);
    ASSERT_EQ(run_qfleet(args + d3 + " seed=7").code, 0);
    auto r1 = csv(d1 + "/runs.csv"), r2 = csv(d2 + "/runs.csv"), r3 = csv(d3 + "/runs.csv");
    ASSERT_EQ(r1.size(), 7u);  // header + 6 trials x 1 seed
    const int lr = column(r1[0], "lr"), gm = column(r1[0], "gamma");
    std::vector<double> lrs;
    for (size_t i = 1; i < r1.size(); i++) {
        const double v = std::atof(r1[i][lr].c_str()), g = std::atof(r1[i][gm].c_str());
        EXPECT_GE(v, 1e-4 * (1 - 1e-5));
        EXPECT_LE(v, 1e-2 * (1 + 1e-5));
        EXPECT_GE(g, 0.9 * (1 - 1e-5));
        EXPECT_LE(g, 0.99 * (1 + 1e-5));
        lrs.push_back(v);
    }
    std::sort(lrs.begin(), lrs.end());
    EXPECT_LT(lrs.front() * 3, lrs.back()) << "six log-uniform draws over two decades spread out";
    EXPECT_EQ(read_file(d1 + "/runs.csv"), read_file(d2 + "/runs.csv")) << "same seed, same sweep";
    EXPECT_NE(r1[1][lr], r3[1][lr]) << "another seed draws other values";
    std::system(("rm -rf " + d1 + " " + d2 + " " + d3).c_str());
}

// A run packed into a sweep fleet with other points equals the same run trained alone: point 0,
// seed 0 of the sweep has the key (seed, 0), as run 0 of `qfleet train` does.
TEST(Sweep, ARunInASweepFleetEqualsTheSameRunTrainedAlone) {
    const std::string ds = tmp_path("s"), dt = tmp_path("t");
    const std::string common = " backend=cpu env=deep_sea env.size=6 hidden=[] batch=16 learning_starts=16 "
                               "steps=1500 log_every=500 explore=bootstrap heads=3";
    CliResult s = run_qfleet("sweep" + common + " lr=0.01,0.1 alpha=0,0.1 seeds=2 --quiet out=" + ds);
    ASSERT_EQ(s.code, 0) << s.out;
    CliResult t = run_qfleet("train" + common + " lr=0.01 alpha=0 out=" + dt);
    ASSERT_EQ(t.code, 0) << t.out;
    auto rs = csv(ds + "/runs.csv"), rt = csv(dt + "/runs.csv");
    ASSERT_EQ(rs.size(), 1u + 4 * 2);
    ASSERT_EQ(rt.size(), 2u);
    for (const char *col : {"episodes", "return_last20", "td_loss", "q_values", "regret", "first_treasure"}) {
        const int cs = column(rs[0], col), ct = column(rt[0], col);
        EXPECT_EQ(rs[1][cs], rt[1][ct]) << col;
    }
    EXPECT_EQ(rs[1][column(rs[0], "name")], "deep_sea__bootstrap__lr=0.01__alpha=0__seed0");
    // curves: long format, conventional names
    const std::string curves = read_file(ds + "/curves.csv");
    EXPECT_EQ(curves.rfind("run,name,step,env_steps,metric,value\n", 0), 0u);
    for (const char *m : {",episodic_return,", ",td_loss,", ",regret,", ",distinct_states,", ",SPS,"})
        EXPECT_NE(curves.find(m), std::string::npos) << m;
    EXPECT_NE(read_file(ds + "/summary.md").find("| lr | alpha |"), std::string::npos);
    std::system(("rm -rf " + ds + " " + dt).c_str());
}

// ---- checkpoint and resume -------------------------------------------------------------------

const char *const kLongSweep[] = {"sweep", "backend=cpu", "env=deep_sea", "env.size=8", "hidden=[]", "batch=16",
                                  "learning_starts=16", "steps=30000", "log_every=500", "explore=bootstrap,count",
                                  "lr=0.01,0.03", "seeds=2", "checkpoint_seconds=0.0001", "max_runs=4", "--quiet"};

// Start the long sweep into dir in the background; returns the child's pid.
pid_t spawn_sweep(const std::string &dir) {
    const pid_t pid = fork();
    if (pid == 0) {
        std::vector<char *> argv;
        argv.push_back((char *)QFLEET_BIN);
        for (const char *a : kLongSweep) argv.push_back((char *)a);
        std::string out = "out=" + dir;
        argv.push_back((char *)out.c_str());
        argv.push_back(nullptr);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execv(QFLEET_BIN, argv.data());
        _exit(127);
    }
    return pid;
}

bool exists(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

// Wait (up to 60 s) until the child wrote a checkpoint; false if it exited first.
bool wait_for_checkpoint(pid_t pid, const std::string &dir) {
    for (int i = 0; i < 6000; i++) {
        if (exists(dir + "/fleet_1.ckpt")) return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return false;
        usleep(10000);
    }
    return false;
}

std::string long_sweep_args(const std::string &dir) {
    std::string a;
    for (const char *w : kLongSweep) a += std::string(w) + " ";
    return a + "out=" + dir;
}

// kill -9 in the middle of a fleet, resume: the results equal an uninterrupted sweep's, bit for bit
// (all but the SPS timing), and the finished fleets are neither lost nor repeated.
TEST(Checkpoint, KillNineResumeEqualsAnUninterruptedSweep) {
    const std::string full = tmp_path("full"), cut = tmp_path("cut");
    ASSERT_EQ(run_qfleet(long_sweep_args(full)).code, 0);
    const pid_t pid = spawn_sweep(cut);
    ASSERT_TRUE(wait_for_checkpoint(pid, cut)) << "the sweep must write a checkpoint while it runs";
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFSIGNALED(st));
    EXPECT_FALSE(exists(cut + "/runs.csv")) << "killed before the end: no final results yet";
    CliResult r = run_qfleet("sweep --resume " + cut);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(full + "/runs.csv"), read_file(cut + "/runs.csv"));
    auto no_sps = [](const std::string &t) {
        std::stringstream in(t), out;
        for (std::string line; std::getline(in, line);)
            if (line.find(",SPS,") == std::string::npos) out << line << "\n";
        return out.str();
    };
    EXPECT_EQ(no_sps(read_file(full + "/curves.csv")), no_sps(read_file(cut + "/curves.csv")));
    EXPECT_FALSE(exists(cut + "/fleet_1.ckpt")) << "a finished sweep leaves no checkpoint";
    std::system(("rm -rf " + full + " " + cut).c_str());
}

// SIGINT finishes the current step, writes a checkpoint and exits 130 with the resume command.
TEST(Checkpoint, SigintWritesACheckpointAndSaysHowToResume) {
    const std::string dir = tmp_path("int");
    const pid_t pid = spawn_sweep(dir);
    ASSERT_TRUE(wait_for_checkpoint(pid, dir));
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 130);
    EXPECT_TRUE(exists(dir + "/fleet_1.ckpt"));
    CliResult r = run_qfleet("sweep --resume " + dir);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(exists(dir + "/runs.csv"));
    std::system(("rm -rf " + dir).c_str());
}

// Corrupted, truncated, foreign and mismatched checkpoints are refused with a clear error.
TEST(Checkpoint, BadCheckpointsAreRefused) {
    const std::string dir = tmp_path("bad");
    const pid_t pid = spawn_sweep(dir);
    ASSERT_TRUE(wait_for_checkpoint(pid, dir));
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    const std::string ck = dir + "/fleet_1.ckpt", good = read_file(ck);
    ASSERT_GT(good.size(), 1000u);
    auto put = [&](const std::string &bytes) { std::ofstream(ck, std::ios::binary) << bytes; };
    std::string flipped = good;
    flipped[good.size() / 2] ^= 0x5a;
    put(flipped);
    expect_cli("sweep --resume " + dir, 1, "corrupted or truncated (checksum mismatch)");
    put(good.substr(0, good.size() - 100));
    expect_cli("sweep --resume " + dir, 1, "corrupted or truncated");
    put(good.substr(0, 20));
    expect_cli("sweep --resume " + dir, 1, "is not a qfleet checkpoint file");
    put("hello, this is not a checkpoint at all, but long enough to hold a header of sixty bytes");
    expect_cli("sweep --resume " + dir, 1, "is not a qfleet checkpoint file");
    std::string other = good;
    other[8] = 9;  // version
    put(other);
    expect_cli("sweep --resume " + dir, 1, "format version 9");
    put(good);
    const std::string words = read_file(dir + "/run.words");
    std::ofstream(dir + "/run.words") << words << "command line\tgamma=0.9\n";
    expect_cli("sweep --resume " + dir, 2, "belongs to another experiment");
    std::ofstream(dir + "/run.words") << words;
    expect_cli("sweep --resume /nonexistent/dir", 2, "cannot read /nonexistent/dir/run.words");
    expect_cli("train --resume " + dir, 2, "holds an experiment of `qfleet sweep`, not of `qfleet train`");
    expect_cli("sweep --resume ''", 2, "--resume needs a results folder");
    expect_cli("sweep lr=0.1 --resume " + dir, 2, "takes no other keys");
    CliResult r = run_qfleet("sweep --resume " + dir);  // the good checkpoint still resumes
    EXPECT_EQ(r.code, 0) << r.out;
    std::system(("rm -rf " + dir).c_str());
}

// A full disk (here: a file-size limit, so writes fail as on a full disk) gives a clear error and a
// non-zero exit; no half-written file is left under a final name, the files written before stay, and
// once there is room again `--resume` finishes the sweep.
TEST(Sweep, AFullDiskGivesAClearErrorAndLeavesNoHalfWrittenFile) {
    const std::string dir = tmp_path("full");
    std::system(("rm -rf " + dir).c_str());
    const std::string cmd = "bash -c 'ulimit -f 8; trap \"\" XFSZ; " + std::string(QFLEET_BIN) +
                            " sweep backend=cpu env=deep_sea env.size=6 hidden=[] batch=16 learning_starts=16 "
                            "steps=3000 log_every=100 lr=0.01,0.03 seeds=2 max_runs=2 --quiet out=" + dir + "' 2>&1";
    FILE *p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
    const int st = pclose(p);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 1) << out;
    EXPECT_NE(out.find("cannot write " + dir + "/fleet_1.curves: File too large"), std::string::npos) << out;
    EXPECT_TRUE(exists(dir + "/run.words")) << "written before the disk filled up";
    EXPECT_TRUE(exists(dir + "/plan.bin")) << "written before the disk filled up";
    EXPECT_FALSE(exists(dir + "/runs.csv"));
    EXPECT_FALSE(exists(dir + "/curves.csv.tmp")) << "no temporary file is left";
    CliResult r = run_qfleet("sweep --resume " + dir);  // room again: the sweep finishes
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_TRUE(exists(dir + "/runs.csv"));
    EXPECT_FALSE(exists(dir + "/fleet_1.curves")) << "merged into curves.csv";
    std::system(("rm -rf " + dir).c_str());
}

// ---- MPI ---------------------------------------------------------------------------------------

// `mpirun -np 2 qfleet sweep` splits the fleets across two ranks and rank 0 merges them: the results
// folder equals what one process writes (the SPS timing aside).
TEST(Mpi, TwoRanksWriteTheSameResultsAsOneProcess) {
#ifndef QFLEET_HAVE_MPI
    GTEST_SKIP() << "this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then rebuild)";
#else
    if (std::system("mpirun --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "mpirun not found";
    const std::string one = tmp_path("mpi1"), two = tmp_path("mpi2");
    const std::string args = " sweep backend=cpu env=deep_sea env.size=6 hidden=[] batch=16 learning_starts=16 "
                             "steps=3000 log_every=500 explore=bootstrap,count lr=0.01,0.03 env.move_cost=0.01,0.02 "
                             "seeds=2 max_runs=4 --quiet out=";
    CliResult a = run_qfleet(args + one);
    ASSERT_EQ(a.code, 0) << a.out;
    EXPECT_NE(a.out.find("in 4 fleets"), std::string::npos) << a.out;
    const std::string mpirun = "mpirun --allow-run-as-root --oversubscribe -np 2 " + std::string(QFLEET_BIN);
    FILE *p = popen((mpirun + args + two + " 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
    const int st = pclose(p);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
    EXPECT_NE(out.find("across MPI ranks"), std::string::npos) << out;
    EXPECT_EQ(read_file(one + "/runs.csv"), read_file(two + "/runs.csv"));
    EXPECT_EQ(read_file(one + "/summary.md"), read_file(two + "/summary.md"));
    auto no_sps = [](const std::string &t) {
        std::stringstream in(t), o;
        for (std::string line; std::getline(in, line);)
            if (line.find(",SPS,") == std::string::npos) o << line << "\n";
        return o.str();
    };
    EXPECT_EQ(no_sps(read_file(one + "/curves.csv")), no_sps(read_file(two + "/curves.csv")));
    std::system(("rm -rf " + one + " " + two).c_str());
    // compare through the same runner: one fleet per size, split across the ranks
    const std::string cargs = " compare backend=cpu sizes=6,8 episodes=200 seeds=2 explorers=epsilon,bootstrap --quiet out=";
    CliResult c1 = run_qfleet(cargs + one);
    ASSERT_EQ(c1.code, 0) << c1.out;
    p = popen((mpirun + cargs + two + " 2>&1").c_str(), "r");
    ASSERT_NE(p, nullptr);
    out.clear();
    for (size_t got; (got = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
    const int st2 = pclose(p);
    ASSERT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0) << out;
    EXPECT_NE(out.find("across MPI ranks"), std::string::npos) << out;
    EXPECT_EQ(read_file(one + "/runs.csv"), read_file(two + "/runs.csv"));
    // the table (the backend line above it names each process's thread count)
    auto table = [](const std::string &t) { return t.substr(t.find("| strategy")); };
    EXPECT_EQ(table(read_file(one + "/summary.md")), table(read_file(two + "/summary.md")));
    EXPECT_EQ(no_sps(read_file(one + "/curves.csv")), no_sps(read_file(two + "/curves.csv")));
    std::system(("rm -rf " + one + " " + two).c_str());
#endif
}

}  // namespace
