//! `wrenctl`: the status CLI. Not implemented yet (a later issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wrenctl is not implemented yet; see the status CLI issue")
}
