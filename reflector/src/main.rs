//! `wren-reflector`: not implemented yet (the speaker issue adds it).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("wren-reflector is not implemented yet; see the speaker issue")
}
