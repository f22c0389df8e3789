use wgfit::{data, Dense, Device, Fit, Sequential};
fn main() -> wgfit::Result<()> {
    let (xt, yt, xv, yv) = data::shipped::concrete()?;
    for device in [Device::gpu()?, Device::cpu()] {
        println!("{:?}", device.info());
        let mut model = Sequential::new(
            &device,
            vec![
                Dense::new(512).activation("relu").input_shape(8),
                Dense::new(512).activation("relu"),
                Dense::new(512).activation("relu"),
                Dense::new(1),
            ],
        );
        model.compile("adam", "mae", &["mae"])?;
        let t = std::time::Instant::now();
        let h = model.fit(&xt, &yt, Fit::new().validation_data(&xv, &yv).batch_size(256).epochs(5).verbose(2))?;
        println!("{:?} {:?} {:.2}s", h.get("loss"), h.get("val_loss"), t.elapsed().as_secs_f64());
    }
    Ok(())
}
