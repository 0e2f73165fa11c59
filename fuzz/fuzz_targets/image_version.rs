//! Image references (`ImageRef::parse`), Calico versions (`Version::parse`)
//! and the Calico pack's release tables on whatever a manifest's `image:`
//! holds. The input is two lines: two image references (or versions).
//!
//! Properties: an image reference is its parts joined back; `same_image`
//! is reflexive and symmetric; a version prints as text that parses back to
//! it; the order is total and agrees with equality; `node_release` keeps the
//! pre-release and maps a version's core to the release's core; an upgrade
//! from a version to itself crosses no boundary.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use tollgate_calico::versions::{Component, crosses, node_release};
use tollgate_sdk::image::ImageRef;
use tollgate_sdk::version::Version;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    let (x, y) = (ImageRef::parse(a), ImageRef::parse(b));
    for image in [&x, &y] {
        let mut joined = String::new();
        if let Some(registry) = image.registry {
            joined.push_str(registry);
            joined.push('/');
        }
        joined.push_str(image.path);
        if let Some(tag) = image.tag {
            joined.push(':');
            joined.push_str(tag);
        }
        if let Some(digest) = image.digest {
            joined.push('@');
            joined.push_str(digest);
        }
        assert_eq!(joined, image.raw.trim(), "the parts are not the reference");
        assert!(image.same_image(image));
        assert!(image.path.ends_with(image.name()));
        if let Some(component) = Component::of(image) {
            assert!(image.is(image.name()));
            let _ = component.label();
            if let Ok(version) = image.version() {
                let _ = component.releases(&version);
            }
        }
    }
    assert_eq!(x.same_image(&y), y.same_image(&x));

    let versions: Vec<Version> = [a, b, x.tag.unwrap_or_default(), y.tag.unwrap_or_default()]
        .into_iter()
        .filter_map(|t| Version::parse(t).ok())
        .collect();
    for v in &versions {
        let printed = v.to_string();
        assert_eq!(
            Version::parse(&printed).as_ref(),
            Ok(v),
            "{printed} does not parse back"
        );
        assert_eq!(v.cmp(v), Ordering::Equal);
        // A pre-release sorts before its release.
        assert!(*v <= v.core());
        let release = node_release(v);
        assert_eq!(release.pre_release(), v.pre_release());
        assert_eq!(release.core(), node_release(&v.core()));
        assert!(!crosses(Some(v), v, v));
        assert!(crosses(None, v, v));
        for component in [
            Component::Node,
            Component::Cni,
            Component::PolicyController,
            Component::KubeControllers,
        ] {
            if let Some(r) = component.releases(v) {
                assert!(r.first <= r.last);
                assert_eq!(r.intersect(r), Some(r));
            }
        }
        for w in &versions {
            assert_eq!(v.cmp(w), w.cmp(v).reverse());
            assert_eq!(v.cmp(w) == Ordering::Equal, v == w);
        }
    }
});
