//! `wren-agent`: not implemented yet (a later issue). It exits with an error rather than
//! pretending to run.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wren-agent is not implemented yet; see the agent issue")
}
