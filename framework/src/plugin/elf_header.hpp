// Reading a plugin file's ELF header before it is loaded: a file the dynamic linker would refuse
// (not ELF, another machine, not a shared object) is refused with a reason a person can act on,
// instead of dlopen's "No such file or directory" or "invalid ELF header".
#pragma once

#include <string>

namespace pg2kafka::plugin {

// Returns an empty string when the file open on `fd` is an ELF shared object for the machine,
// class (32/64-bit) and byte order this process runs on, else the reason (for "cannot use plugin
// file '<path>': "). Reads with pread: the file offset is left alone.
std::string check_elf_header(int fd);

// Whether the shared object open on `fd` (which passed check_elf_header) names $ORIGIN in its
// RPATH, RUNPATH or NEEDED entries: the dynamic linker expands $ORIGIN from the name the library
// was opened by, so such a library must be opened by its real path to find its dependencies.
bool uses_origin(int fd);

// "x86-64", "AArch64", ... for an ELF e_machine value, "ELF machine <n>" when unknown.
std::string machine_name(unsigned machine);

}  // namespace pg2kafka::plugin
