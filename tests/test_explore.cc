// test_explore.cc — exploration operations against independent truths.
#include <gtest/gtest.h>
