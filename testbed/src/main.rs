//! `wren-testbed`: see `wren_testbed::cli`.

fn main() -> std::process::ExitCode {
    wren_testbed::cli::main()
}
