//! `framewire devices`: lists cameras with the formats, sizes and frame rates they offer, or
//! (`--probe rtsp://...`) the streams an RTSP camera describes.

use clap::Args;
use framewire_capture::list_cameras;
use framewire_core::CaptureError;

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Instead, ask this RTSP camera what it offers (DESCRIBE): rtsp://[USER:PASS@]HOST[:PORT]/PATH
    #[arg(long, value_name = "URL")]
    probe: Option<String>,
}

pub fn run(args: DevicesArgs) -> anyhow::Result<()> {
    if let Some(url) = args.probe {
        let lines = framewire_capture::rtsp::probe(&url).map_err(|e| match e {
            CaptureError::Config(why) => anyhow::anyhow!("--probe {why}"),
            e => e.into(),
        })?;
        for line in lines {
            println!("{line}");
        }
        return Ok(());
    }
    let cameras = match list_cameras() {
        Ok(cameras) => cameras,
        Err(CaptureError::Open { reason, .. }) => {
            println!("no cameras: {reason}");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if cameras.is_empty() {
        println!("no cameras found (no /dev/video* device that captures video)");
        println!(
            "plug one in, check `ls /dev/video*` and that you are in the `video` group, or use --source test"
        );
        return Ok(());
    }
    for camera in cameras {
        println!("camera:{} {} '{}'", camera.index, camera.path, camera.name);
        match camera.modes {
            Ok(modes) if modes.is_empty() => {
                println!("  no format framewire reads (MJPG, YUYV or NV12)");
            }
            Ok(modes) => {
                for line in framewire_kit::lines::camera_modes(&modes) {
                    println!("  {line}");
                }
            }
            Err(why) => println!("  formats unavailable: {why}"),
        }
    }
    Ok(())
}
