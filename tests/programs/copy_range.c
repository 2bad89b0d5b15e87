// copy_range: copies a byte range between two files with copy_file_range(2), as a program for
// tests/programs/run.sh (a block-aligned range lets a reflink filesystem share the blocks).
// Knows nothing of daxfs. Usage: copy_range SRC SRC_OFFSET DST DST_OFFSET LENGTH
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long long Number(const char* s, const char* what) {
  char* end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0' || v < 0) {
    fprintf(stderr, "copy_range: %s: '%s' is not a non-negative number\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: copy_range SRC SRC_OFFSET DST DST_OFFSET LENGTH\n");
    return 2;
  }
  loff_t in_off = Number(argv[2], "SRC_OFFSET"), out_off = Number(argv[4], "DST_OFFSET");
  long long left = Number(argv[5], "LENGTH");
  int in = open(argv[1], O_RDONLY);
  if (in < 0) {
    fprintf(stderr, "copy_range: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  int out = open(argv[3], O_WRONLY | O_CREAT, 0644);
  if (out < 0) {
    fprintf(stderr, "copy_range: %s: %s\n", argv[3], strerror(errno));
    return 1;
  }
  long long copied = 0;
  while (left > 0) {
    ssize_t n = copy_file_range(in, &in_off, out, &out_off, (size_t)left, 0);
    if (n < 0) {
      fprintf(stderr, "copy_range: copy_file_range after %lld bytes: %s\n", copied,
              strerror(errno));
      return 1;
    }
    if (n == 0) break;  // end of the source
    copied += n;
    left -= n;
  }
  if (close(out) != 0) {
    fprintf(stderr, "copy_range: close %s: %s\n", argv[3], strerror(errno));
    return 1;
  }
  printf("%lld\n", copied);
  return 0;
}
