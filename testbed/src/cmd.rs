//! Running external programs (`ip`, daemon CLIs) with errors that name the command.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Renders a command line for messages.
pub fn render<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs a program and returns its output; a non-zero exit is an error carrying stderr.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Output> {
    run_with(program, args, &[], None)
}

/// Runs a program with extra environment and optional stdin; non-zero exit is an error.
pub fn run_with<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
) -> Result<Output> {
    let out = run_unchecked(program, args, env, stdin)?;
    if out.status.success() {
        Ok(out)
    } else {
        let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.is_empty() {
            stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(Error::Command {
            cmd: render(program, args),
            status: out.status.to_string(),
            stderr,
        })
    }
}

/// Runs a program and returns its output whatever the exit status.
pub fn run_unchecked<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    env: &[(String, String)],
    stdin: Option<&[u8]>,
) -> Result<Output> {
    let mut c = Command::new(program);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| Error::Spawn {
        cmd: render(program, args),
        source: e,
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A plugin that exits early closes its stdin; that is reported by its exit status.
        let _ = pipe.write_all(data);
    }
    child.wait_with_output().map_err(|e| Error::Spawn {
        cmd: render(program, args),
        source: e,
    })
}

/// `ip ARGS...`
pub fn ip<S: AsRef<OsStr>>(args: &[S]) -> Result<Output> {
    run("ip", args)
}

/// Runs `argv` inside network namespace `ns` (`ip netns exec ns argv...`).
pub fn ns_exec<S: AsRef<str>>(ns: &str, argv: &[S], env: &[(String, String)]) -> Result<Output> {
    let mut args: Vec<String> = vec!["netns".into(), "exec".into(), ns.into()];
    args.extend(argv.iter().map(|s| s.as_ref().to_string()));
    run_with("ip", &args, env, None)
}

/// Splits a command line the way a POSIX shell would for plain words and quotes
/// (no variables, globs or operators). containerlab runs `exec` entries without a shell.
pub fn split_words(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated single quote in `{line}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x) => cur.push(x),
                            None => return Err(format!("dangling backslash in `{line}`")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated double quote in `{line}`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(x) => {
                    in_word = true;
                    cur.push(x)
                }
                None => return Err(format!("dangling backslash in `{line}`")),
            },
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c)
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_words_quotes() {
        assert_eq!(
            split_words(r#"bash -c "ip addr add 10.0.0.1/24 dev eth1" 'a b' c\ d"#).unwrap(),
            vec![
                "bash",
                "-c",
                "ip addr add 10.0.0.1/24 dev eth1",
                "a b",
                "c d"
            ]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), vec![""]);
        assert!(split_words("'x").is_err());
    }
}
