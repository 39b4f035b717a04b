//! `wren-testbed`: not implemented yet.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wren-testbed is not implemented yet")
}
