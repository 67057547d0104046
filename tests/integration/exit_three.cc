// A program that does nothing and exits with 3, built twice for the
// `cpprof run` tests: dynamically linked (exit_three) and fully static
// (exit_three_static, which LD_PRELOAD cannot reach).
int main() { return 3; }
