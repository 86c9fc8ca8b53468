//! `--transform`'s written form of a [`Compose`]: `key=value` items separated by commas,
//! the steps (`resize`, `crop`) in the order torchvision applies them, e.g.
//! `resize=256,interp=bicubic,crop=224` or `resize=64x64,normalize=imagenet`.
//!
//! `resize=N` (shorter side) or `HxW`; `crop=N` or `HxW` (centre crop); `interp=bilinear |
//! bicubic | nearest` (every resize's; default bilinear); `normalize=imagenet | none`
//! (default imagenet), or `mean=R/G/B,std=R/G/B`.

use anyhow::{Result, anyhow, bail};

use super::compose::{Compose, Normalize, Step};
use super::resize::Interpolation;

/// Every key a written composition may use.
pub const KEYS: [&str; 6] = ["resize", "crop", "interp", "normalize", "mean", "std"];

/// The composition `text` writes.
pub fn parse(text: &str) -> Result<Compose> {
    let items = text
        .split(',')
        .map(|item| {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                anyhow!("transform '{text}': '{item}' is not key=value (keys: {})", KEYS.join(", "))
            })?;
            let key = key.trim();
            if !KEYS.contains(&key) {
                bail!("transform '{text}': unknown key '{key}' (valid: {})", KEYS.join(", "));
            }
            Ok((key, value.trim()))
        })
        .collect::<Result<Vec<_>>>()?;
    let once = |key: &str| -> Result<Option<&str>> {
        let mut values = items.iter().filter(|(k, _)| *k == key).map(|(_, v)| *v);
        let first = values.next();
        if values.next().is_some() {
            bail!("transform '{text}': '{key}' is given twice");
        }
        Ok(first)
    };
    let interpolation = once("interp")?.map(interpolation).transpose()?.unwrap_or_default();
    let normalize = normalize(once("normalize")?, once("mean")?, once("std")?)?;
    let steps = items
        .iter()
        .filter_map(|&(key, value)| Step::parse(key, value, interpolation))
        .collect::<Result<Vec<_>>>()?;
    if once("interp")?.is_some() && !steps.iter().any(|s| matches!(s, Step::Resize { .. })) {
        bail!("transform '{text}': interp= chooses the resize's interpolation, and there is no resize=");
    }
    Compose::new(steps, normalize)
}

fn interpolation(value: &str) -> Result<Interpolation> {
    Interpolation::ALL.into_iter().find(|i| i.name() == value.to_lowercase()).ok_or_else(|| {
        let names: Vec<_> = Interpolation::ALL.iter().map(|i| i.name()).collect();
        anyhow!("interp={value}: valid: {}", names.join(", "))
    })
}

fn normalize(name: Option<&str>, mean: Option<&str>, std: Option<&str>) -> Result<Normalize> {
    match (name, mean, std) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            bail!(
                "normalize= and mean=/std= both say how to normalise: give one (mean=R/G/B,std=R/G/B alone)"
            )
        }
        (Some(name), None, None) => match name.to_lowercase().as_str() {
            "imagenet" => Ok(Normalize::ImageNet),
            "none" => Ok(Normalize::None),
            _ => bail!("normalize={name}: valid: imagenet, none (or mean=R/G/B,std=R/G/B)"),
        },
        (None, Some(mean), Some(std)) => {
            Ok(Normalize::MeanStd { mean: channels("mean", mean)?, std: channels("std", std)? })
        }
        (None, Some(_), None) => bail!("mean= needs std= too (mean=R/G/B,std=R/G/B)"),
        (None, None, Some(_)) => bail!("std= needs mean= too (mean=R/G/B,std=R/G/B)"),
        (None, None, None) => Ok(Normalize::ImageNet),
    }
}

/// Three numbers `R/G/B`.
fn channels(key: &str, value: &str) -> Result<[f64; 3]> {
    let bad = || anyhow!("{key}={value}: expected three numbers R/G/B, e.g. {key}=0.5/0.5/0.5");
    let numbers = value
        .split('/')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(bad))
        .collect::<Result<Vec<_>>>()?;
    <[f64; 3]>::try_from(numbers).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::folder::compose::ResizeTo;

    #[test]
    fn steps_keep_their_order_and_interp_applies_to_the_resize() {
        let c = parse("crop=178,resize=64x32,interp=nearest,normalize=none").expect("parse");
        assert_eq!(
            c.steps,
            [
                Step::CenterCrop { height: 178, width: 178 },
                Step::Resize {
                    size: ResizeTo::Exact { height: 64, width: 32 },
                    interpolation: Interpolation::Nearest
                },
            ]
        );
        assert_eq!(c.normalize, Normalize::None);
        assert_eq!(c.output_size(), Some((32, 64)));
    }

    #[test]
    fn bad_specs_name_the_key_and_what_is_valid() {
        let err = |t: &str| parse(t).map(|_| ()).unwrap_err().to_string();
        assert!(
            err("resize=64x64,interp=lanczos").contains("interp=lanczos: valid: bilinear, bicubic, nearest")
        );
        assert!(err("resize=64,size=3").contains("unknown key 'size'"));
        assert!(err("resize=abc").contains("resize=abc"));
        assert!(err("resize=64").contains("different sizes"));
        assert!(err("resize=64x64,normalize=cifar").contains("normalize=cifar: valid: imagenet, none"));
        assert!(err("resize=64x64,mean=0.5/0.5,std=1/1/1").contains("mean=0.5/0.5: expected three numbers"));
        assert!(err("resize=64x64,mean=0.5/0.5/0.5").contains("needs std="));
        assert!(err("resize=64x64,mean=1/1/1,std=0/1/1").contains("std must be"));
        assert!(err("crop=32,interp=bicubic").contains("no resize="));
        assert!(err("resize=64x64,interp=bicubic,interp=nearest").contains("given twice"));
    }
}
