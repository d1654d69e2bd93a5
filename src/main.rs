// mimalloc: the hot path allocates many small JSON nodes per webhook; glibc's allocator showed up
// as a top cost in profiles (README, "Performance").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gateway::cli::main()
}
