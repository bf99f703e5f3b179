// The failure count of a native test and FAIL(...), which counts a failure and
// prints the first ten; the test prints "ok" when there are none.
#pragma once

#include <cstdio>

inline int failures = 0;
#define FAIL(...)                                               \
    do {                                                        \
        if (failures++ < 10) std::printf(__VA_ARGS__);          \
    } while (0)
