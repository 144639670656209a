#include "runtime/standard_descriptors.hpp"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace pg2kafka::runtime {

void keep_standard_descriptors_open() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    // The opposite direction of the descriptor's use, so that nothing is silently swallowed.
    int flags = fd == 0 ? O_WRONLY : O_RDONLY;
    int opened = open("/dev/null", flags);
    // Without /dev (a bare chroot), a directory holds the number just as well: every read and
    // write through it fails.
    if (opened < 0) opened = open("/", O_RDONLY | O_DIRECTORY);
    if (opened < 0) _exit(1);  // nothing safe is left to do, and nowhere to say it
    if (opened != fd) {
      // Lower descriptors are open (the loop goes upwards), so this is not expected; be safe.
      dup2(opened, fd);
      close(opened);
    }
  }
}

}  // namespace pg2kafka::runtime
