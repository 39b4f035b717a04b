//! Polling with a deadline (tests never sleep for a fixed time).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Polls `probe` every 100 ms until it returns `Ok(true)` or `timeout` passes. Errors from the
/// probe count as "not yet" (a daemon's socket may not exist yet) and the last one is reported
/// in the timeout error.
pub fn wait_until<F>(what: impl Into<String>, timeout: Duration, mut probe: F) -> Result<()>
where
    F: FnMut() -> Result<bool>,
{
    let start = Instant::now();
    let mut last = None;
    loop {
        match probe() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e.to_string()),
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: what.into(),
                secs: start.elapsed().as_secs_f64(),
                last,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn succeeds_and_times_out() {
        let mut n = 0;
        wait_until("n reaches 3", Duration::from_secs(5), || {
            n += 1;
            Ok(n >= 3)
        })
        .unwrap();
        let e = wait_until("never", Duration::from_millis(250), || {
            Err(crate::Error::Usage("socket missing".into()))
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("never") && e.contains("socket missing"), "{e}");
    }
}
