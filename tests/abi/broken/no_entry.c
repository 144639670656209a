/* A shared library that is not a plugin: it exports no entry function. */
int p2k_something_else(void) {
  return 42;
}
