// The program posix_spawn starts in spawn_bench: it exits at once. Linked statically, so the
// measured cost is process creation and exec, not the dynamic loader's work.
int main() { return 0; }
