#include "plugin/elf_header.hpp"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace pg2kafka::plugin {
namespace {

// What this process is, as the ELF header of a library it can load must say.
constexpr unsigned char kHostClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kHostData = ELFDATA2LSB;
#else
constexpr unsigned char kHostData = ELFDATA2MSB;
#endif
// 0 when unknown: the machine is then left to the dynamic linker to check.
#if defined(__x86_64__)
constexpr unsigned kHostMachine = 62;
#elif defined(__i386__)
constexpr unsigned kHostMachine = 3;
#elif defined(__aarch64__)
constexpr unsigned kHostMachine = 183;
#elif defined(__arm__)
constexpr unsigned kHostMachine = 40;
#elif defined(__powerpc64__)
constexpr unsigned kHostMachine = 21;
#elif defined(__powerpc__)
constexpr unsigned kHostMachine = 20;
#elif defined(__s390__)
constexpr unsigned kHostMachine = 22;
#elif defined(__riscv)
constexpr unsigned kHostMachine = 243;
#elif defined(__loongarch__)
constexpr unsigned kHostMachine = 258;
#elif defined(__mips__)
constexpr unsigned kHostMachine = 8;
#else
constexpr unsigned kHostMachine = 0;
#endif

const char* const kNotLoadable = "it is not a loadable shared library: ";

unsigned read16(const unsigned char* p, unsigned char data) {
  return data == ELFDATA2LSB ? (p[0] | (p[1] << 8)) : ((p[0] << 8) | p[1]);
}

std::string bits(unsigned char elf_class) {
  return elf_class == ELFCLASS64 ? "64-bit" : "32-bit";
}

std::string byte_order(unsigned char data) {
  return data == ELFDATA2LSB ? "little-endian" : "big-endian";
}

bool read_exactly(int fd, void* buf, size_t size, off_t offset) {
  auto* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return true;
}

}  // namespace

std::string machine_name(unsigned machine) {
  switch (machine) {
    case 3:
      return "x86 (i386)";
    case 8:
      return "MIPS";
    case 20:
      return "PowerPC";
    case 21:
      return "PowerPC64";
    case 22:
      return "IBM Z (s390)";
    case 40:
      return "ARM (32-bit)";
    case 43:
      return "SPARC V9";
    case 50:
      return "IA-64";
    case 62:
      return "x86-64";
    case 183:
      return "AArch64";
    case 243:
      return "RISC-V";
    case 258:
      return "LoongArch";
  }
  return "ELF machine " + std::to_string(machine);
}

std::string check_elf_header(int fd) {
  unsigned char h[EI_NIDENT + 4] = {};
  ssize_t n;
  do {
    n = pread(fd, h, sizeof h, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return "cannot read it: " + std::string(std::strerror(errno));
  if (n < SELFMAG || std::memcmp(h, ELFMAG, SELFMAG) != 0)
    return std::string(kNotLoadable) +
           "it is not an ELF file (it does not start with the ELF magic bytes 7f 45 4c 46; a "
           "text file or a linker script cannot be a plugin)";
  if (static_cast<size_t>(n) < sizeof h)
    return std::string(kNotLoadable) + "it is cut short (" + std::to_string(n) +
           " bytes, too few for an ELF header)";
  const unsigned char cls = h[EI_CLASS], data = h[EI_DATA];
  if ((cls != ELFCLASS32 && cls != ELFCLASS64) || (data != ELFDATA2LSB && data != ELFDATA2MSB) ||
      h[EI_VERSION] != EV_CURRENT)
    return std::string(kNotLoadable) + "its ELF header is corrupt (class " + std::to_string(cls) +
           ", byte order " + std::to_string(data) + ", version " + std::to_string(h[EI_VERSION]) +
           ")";
  const unsigned machine = read16(h + 18, data), type = read16(h + 16, data);
  const bool other_machine = kHostMachine != 0 && machine != kHostMachine;
  if (other_machine || cls != kHostClass || data != kHostData) {
    std::string detail;
    if (cls != kHostClass) detail += ", " + bits(cls);
    if (data != kHostData) detail += ", " + byte_order(data);
    std::string host = kHostMachine ? machine_name(kHostMachine) : "this machine";
    std::string host_detail;
    if (cls != kHostClass) host_detail += ", " + bits(kHostClass);
    if (data != kHostData) host_detail += ", " + byte_order(kHostData);
    if (!host_detail.empty()) host += " (" + host_detail.substr(2) + ")";
    return "it is built for " + machine_name(machine) + " (ELF machine " + std::to_string(machine) +
           detail + "), but this pg2kafka runs on " + host + ": install the plugin built for " +
           (kHostMachine ? machine_name(kHostMachine) : "this machine");
  }
  switch (type) {
    case ET_DYN:
      return {};
    case ET_EXEC:
      return std::string(kNotLoadable) +
             "it is an executable program (ELF type ET_EXEC), not a shared object; build "
             "plugins as shared modules (pg2kafka_add_plugin does)";
    case ET_REL:
      return std::string(kNotLoadable) +
             "it is an object file (ELF type ET_REL), not a shared object; link it with -shared "
             "(pg2kafka_add_plugin does)";
    case ET_CORE:
      return std::string(kNotLoadable) + "it is a core dump (ELF type ET_CORE)";
  }
  return std::string(kNotLoadable) + "its ELF type is " + std::to_string(type) +
         ", not a shared object (ET_DYN)";
}

bool uses_origin(int fd) {
  // The header matched this process (check_elf_header), so the native ELF structs apply.
  ElfW(Ehdr) eh;
  if (!read_exactly(fd, &eh, sizeof eh, 0)) return false;
  if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 || eh.e_phnum > 4096) return false;
  std::vector<ElfW(Phdr)> ph(eh.e_phnum);
  if (!read_exactly(fd, ph.data(), ph.size() * sizeof(ElfW(Phdr)), eh.e_phoff)) return false;

  const ElfW(Phdr)* dynamic = nullptr;
  for (const auto& p : ph)
    if (p.p_type == PT_DYNAMIC) dynamic = &p;
  constexpr size_t kLimit = 1 << 20;  // a plugin's dynamic section and strings are far smaller
  if (!dynamic || dynamic->p_filesz == 0 || dynamic->p_filesz > kLimit) return false;
  std::vector<ElfW(Dyn)> dyn(dynamic->p_filesz / sizeof(ElfW(Dyn)));
  if (!read_exactly(fd, dyn.data(), dyn.size() * sizeof(ElfW(Dyn)), dynamic->p_offset))
    return false;

  ElfW(Addr) strtab = 0;
  size_t strsz = 0;
  std::vector<size_t> names;  // offsets into the string table
  for (const auto& d : dyn) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
    if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
    if (d.d_tag == DT_RPATH || d.d_tag == DT_RUNPATH || d.d_tag == DT_NEEDED)
      names.push_back(d.d_un.d_val);
  }
  if (names.empty() || strsz == 0 || strsz > kLimit) return false;
  // The string table is given by address: find the loaded segment that holds it.
  off_t offset = -1;
  for (const auto& p : ph)
    if (p.p_type == PT_LOAD && strtab >= p.p_vaddr && strtab + strsz <= p.p_vaddr + p.p_filesz)
      offset = static_cast<off_t>(p.p_offset + (strtab - p.p_vaddr));
  if (offset < 0) return false;
  std::string strings(strsz, '\0');
  if (!read_exactly(fd, strings.data(), strsz, offset)) return false;
  for (size_t at : names) {
    if (at >= strsz) continue;
    std::string s = strings.c_str() + at;
    if (s.find("$ORIGIN") != std::string::npos || s.find("${ORIGIN}") != std::string::npos)
      return true;
  }
  return false;
}

}  // namespace pg2kafka::plugin
