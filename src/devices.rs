//! `framewire devices`: lists cameras (the camera feature is a later issue; this build says so).

pub fn run() -> anyhow::Result<()> {
    println!("no cameras: this build has no camera support (rebuild with --features camera)");
    println!("use --source test for the synthetic test pattern");
    Ok(())
}
