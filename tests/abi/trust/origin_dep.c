/* A library that the origin plugin finds next to itself, through $ORIGIN in its RUNPATH. */
const char* p2k_origin_dep_version(void) {
  return "4.2.0";
}
