/* npy.h — numpy's .npy format for one 2-D little-endian float32 array: a writer and a validating
 * reader. The format (numpy.lib.format, "NPY format version 1.0"): the magic "\x93NUMPY", a major
 * and a minor version byte, the header length (little-endian uint16 in version 1.0, uint32 in 2.0
 * and 3.0), then the header, a Python dict literal with exactly the keys 'descr', 'fortran_order'
 * and 'shape', padded with spaces and ended by '\n' so that the data starts at a multiple of 64
 * bytes; then the data, C order. No Debian package offers a C reader or writer of the format (the
 * known ones are C++ or Python), and the part qfleet needs is this small, so it is written here.
 *
 * Source: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html */
#ifndef QF_NPY_H
#define QF_NPY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write data [rows][cols] (host floats) as a version 1.0 .npy file to f: header
 * {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), }. 0, or -1 on a write error. */
int qf_npy_write_f32(FILE *f, int64_t rows, int64_t cols, const float *data);

/* Read a .npy file that must hold a float32 array of shape (rows, cols) in C order: the magic,
 * version (1.0, 2.0 or 3.0), header dict (exactly descr '<f4', fortran_order False and a 2-tuple
 * shape equal to (rows, cols)) and the exact file size are checked before data is written. data
 * receives rows * cols floats. 0, or -1 with one line in err naming path and the problem. */
int qf_npy_read_f32(const char *path, int64_t rows, int64_t cols, float *data, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif
