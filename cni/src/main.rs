//! `wren`: the CNI plugin. Not implemented yet.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the wren CNI plugin is not implemented yet")
}
