//! `vigil config`: check configuration files.

use std::path::PathBuf;
use std::process::ExitCode;

/// Subcommands of `vigil config`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a configuration file, and the rule and response policy files it names; prints the
    /// place of each problem and exits non-zero.
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
                let mut ok = true;
                let mut rules = detect::RuleSetBuilder::new().builtin(c.detection.builtin);
                for f in &c.detection.rules {
                    rules = rules.add_file(f.clone());
                }
                match rules.build() {
                    Ok((_, report)) => {
                        for d in report.errors() {
                            eprintln!("{d}");
                            ok = false;
                        }
                    }
                    Err(e) => {
                        eprintln!("detection.rules: {e}");
                        ok = false;
                    }
                }
                if let Err(e) = app::response::load_policies(&c.response) {
                    eprintln!("{e}");
                    ok = false;
                }
                if !ok {
                    return Ok(ExitCode::FAILURE);
                }
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
