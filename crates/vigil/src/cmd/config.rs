//! `vigil config`: check configuration files.

use std::path::PathBuf;
use std::process::ExitCode;

/// Subcommands of `vigil config`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a configuration file; prints the place of the first problem and exits non-zero.
    Check {
        /// The YAML file.
        file: PathBuf,
        /// Print the effective configuration (defaults filled in) when it is valid.
        #[arg(long)]
        print: bool,
    },
}

/// Runs `vigil config`.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { file, print } => match app::Config::load(&file) {
            Ok(c) => {
                println!("{}: OK", file.display());
                if print {
                    print!("{}", c.to_yaml());
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}
