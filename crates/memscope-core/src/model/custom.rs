//! A burn user's own classifier: any `#[derive(Module)]` type that implements
//! [`BurnClassifier`], studied as memscope's own architectures are.
//!
//! What the trait asks is small because memscope reads a burn module the way it reads its own:
//! its candidate layers are the burn [`Conv2d`](burn::nn::conv::Conv2d) and
//! [`Linear`](burn::nn::Linear) modules inside it, named by their field path (`features.0`,
//! `head`), found by burn's visitor; interventions and rewinds write them through burn's mapper;
//! gradient scores make them autodiff leaves on the autodiff device memscope uses everywhere and
//! read their gradients after `backward`. The user's module stays a burn `Module`, so what
//! memscope does to its weights is what burn does to any module.
//!
//! A user's module cannot be a field of [`super::Network`] as it is (a `Module`'s visitors are
//! generic, so not object-safe). [`Custom`] boxes it behind an object-safe trait and carries
//! burn's visitors and mappers across with their parameters type-erased, rank by rank, as
//! burn itself does for its reparameterizations (`burn_core::module::param::reparameterization_dyn`).
//!
//! How a run of such a model becomes an experiment: [`register`] the type under a name, then
//! `experiment::custom::create` records the run's per-epoch burn records
//! (`Module::save_file`) with the name. A process that opens the experiment must have
//! registered the same name: `memscope` itself does not contain the user's type, so the user's
//! program, having registered it, runs memscope's command line and explorer through the
//! `memscope` library (`examples/custom-burn-model`).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, anyhow, bail};
use burn::module::{
    Content, Devices, Flag, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
};
use burn::prelude::*;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use super::LayerInfo;

/// A burn image classifier memscope can study: implement it on your `#[derive(Module)]` type.
///
/// Candidate layers (whose units are neurons) are the burn `Conv2d` and `Linear` modules in
/// the type, named by field path; the last `Linear` is the classifier head. BatchNorm uses
/// its running statistics whenever memscope runs the model (the module is put in burn's
/// `valid()` state when loaded), gradient scores included.
///
/// ```ignore
/// #[derive(Module, Debug)]
/// struct Net { conv1: Conv2d, conv2: Conv2d, head: Linear }
///
/// impl BurnClassifier for Net {
///     fn logits(&self, images: Tensor<4>) -> Tensor<2> { ... }
/// }
///
/// memscope_core::model::custom::register("my-net", |device| NetConfig::new().init(device));
/// ```
pub trait BurnClassifier: Module + Sync + 'static {
    /// Whether [`Self::features`] and [`Self::head`] are given (DFR, the paper variant and
    /// mitigation read the penultimate representation; without it they are refused).
    const FEATURES: bool = false;

    /// Logits `[batch, classes]` from images `[batch, channels, height, width]`.
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;

    /// The penultimate representation `[batch, dim]` the head reads (`FEATURES` = true).
    fn features(&self, _images: Tensor<4>) -> Option<Tensor<2>> {
        None
    }

    /// The head on [`Self::features`]: `logits(x)` must equal `head(features(x))`.
    fn head(&self, _features: Tensor<2>) -> Option<Tensor<2>> {
        None
    }
}

/// What a feature that needs the penultimate representation says of a custom burn model
/// without it.
pub const NO_FEATURES: &str = "this burn model gives its logits only (its BurnClassifier has FEATURES = false), \
     not the penultimate features DFR, the paper variant and mitigation need: implement features and head, \
     or use intervene, scores, ranks, sensitivity, control, sweeps and figures";

/// A custom burn model as recorded in `experiment.ron`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomConfig {
    /// The name the model's type was registered under ([`register`]).
    pub name: String,
    pub in_channels: usize,
    pub num_classes: usize,
    /// Whether the type gives its penultimate features ([`BurnClassifier::FEATURES`]).
    pub features: bool,
    /// The candidate layers, in forward order (a record: the registered type gives them).
    pub layers: Vec<LayerInfo>,
}

/// The object-safe side of a [`BurnClassifier`].
trait DynClassifier: Send + Sync + fmt::Debug {
    fn logits(&self, images: Tensor<4>) -> Tensor<2>;
    fn features(&self, images: Tensor<4>) -> Option<Tensor<2>>;
    fn head(&self, features: Tensor<2>) -> Option<Tensor<2>>;
    fn has_features(&self) -> bool;
    fn clone_box(&self) -> Box<dyn DynClassifier>;
    fn collect_devices(&self, devices: Devices) -> Devices;
    fn fork(self: Box<Self>, device: &Device) -> Box<dyn DynClassifier>;
    fn to_device(self: Box<Self>, device: &Device) -> Box<dyn DynClassifier>;
    fn train(self: Box<Self>) -> Box<dyn DynClassifier>;
    fn valid(&self) -> Box<dyn DynClassifier>;
    fn materialize(self: Box<Self>) -> Box<dyn DynClassifier>;
    fn visit(&self, visitor: &mut dyn ErasedVisitor);
    fn map(self: Box<Self>, mapper: &mut dyn ErasedMapper) -> Box<dyn DynClassifier>;
    fn load(self: Box<Self>, record: ModuleRecord) -> Result<Box<dyn DynClassifier>>;
    fn content(&self, content: Content) -> Option<Content>;
}

impl<M: BurnClassifier> DynClassifier for M {
    fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        BurnClassifier::logits(self, images)
    }
    fn features(&self, images: Tensor<4>) -> Option<Tensor<2>> {
        BurnClassifier::features(self, images)
    }
    fn head(&self, features: Tensor<2>) -> Option<Tensor<2>> {
        BurnClassifier::head(self, features)
    }
    fn has_features(&self) -> bool {
        M::FEATURES
    }
    fn clone_box(&self) -> Box<dyn DynClassifier> {
        Box::new(self.clone())
    }
    fn collect_devices(&self, devices: Devices) -> Devices {
        Module::collect_devices(self, devices)
    }
    fn fork(self: Box<Self>, device: &Device) -> Box<dyn DynClassifier> {
        Box::new(Module::fork(*self, device))
    }
    fn to_device(self: Box<Self>, device: &Device) -> Box<dyn DynClassifier> {
        Box::new(Module::to_device(*self, device))
    }
    fn train(self: Box<Self>) -> Box<dyn DynClassifier> {
        Box::new(Module::train(*self))
    }
    fn valid(&self) -> Box<dyn DynClassifier> {
        Box::new(Module::valid(self))
    }
    fn materialize(self: Box<Self>) -> Box<dyn DynClassifier> {
        Box::new(Module::materialize(*self))
    }
    fn visit(&self, visitor: &mut dyn ErasedVisitor) {
        Module::visit(self, &mut Unerased(visitor));
    }
    fn map(self: Box<Self>, mapper: &mut dyn ErasedMapper) -> Box<dyn DynClassifier> {
        Box::new(Module::map(*self, &mut UnerasedMapper(mapper)))
    }
    fn load(self: Box<Self>, record: ModuleRecord) -> Result<Box<dyn DynClassifier>> {
        let module = (*self).try_load_record(record).map_err(|e| anyhow!("{e}"))?;
        Ok(Box::new(Module::valid(&module)))
    }
    fn content(&self, content: Content) -> Option<Content> {
        content.set_top_level_type(std::any::type_name::<M>()).optional()
    }
}

// ---- burn's visitors and mappers across the object-safe boundary ----

/// A visitor whose parameters arrive type-erased (`&Param<Tensor<D, K>>` as `&dyn Any`).
trait ErasedVisitor {
    fn enter(&mut self, name: &str, container: &str);
    fn exit(&mut self, name: &str, container: &str);
    fn param(&mut self, param: &dyn Any);
    fn flag(&mut self, flag: &Param<Flag>);
}

/// A mapper whose parameters arrive type-erased and go back as the same type.
trait ErasedMapper {
    fn enter(&mut self, name: &str, container: &str);
    fn exit(&mut self, name: &str, container: &str);
    fn param(&mut self, param: Box<dyn Any>) -> Box<dyn Any>;
    fn flag(&mut self, flag: Param<Flag>) -> Param<Flag>;
}

/// Calls `$call` with the parameter `$param` (a `&dyn Any` or `Box<dyn Any>`) downcast to
/// whichever rank and kind it is (ranks 1 to 6 of float, int and bool tensors); else `$none`.
macro_rules! by_rank {
    (@ $param:expr, $downcast:ident, $p:ident, $call:expr, $none:expr; $($d:literal),*) => {{
        let param = $param;
        $(
            let param = match param.$downcast::<Param<Tensor<$d>>>() {
                Ok($p) => return $call,
                Err(other) => other,
            };
            let param = match param.$downcast::<Param<Tensor<$d, Int>>>() {
                Ok($p) => return $call,
                Err(other) => other,
            };
            let param = match param.$downcast::<Param<Tensor<$d, Bool>>>() {
                Ok($p) => return $call,
                Err(other) => other,
            };
        )*
        $none(param)
    }};
    ($param:expr, $downcast:ident, |$p:ident| $call:expr, $none:expr) => {{
        by_rank!(@ $param, $downcast, $p, $call, $none; 1, 2, 3, 4, 5, 6)
    }};
}

/// `&dyn Any`'s `downcast_ref` as a `Result`, for [`by_rank!`].
trait DowncastRef<'a> {
    fn downcast_ref_or<T: 'static>(self) -> Result<&'a T, &'a dyn Any>;
}

impl<'a> DowncastRef<'a> for &'a dyn Any {
    fn downcast_ref_or<T: 'static>(self) -> Result<&'a T, &'a dyn Any> {
        self.downcast_ref::<T>().ok_or(self)
    }
}

/// A generic burn visitor seen through [`ErasedVisitor`].
struct Erased<'a, V>(&'a mut V);

/// Which `visit_*` of a burn visitor takes a parameter of this type.
trait Visit<V> {
    fn visit_with(&self, visitor: &mut V);
}

impl<V: ModuleVisitor, const D: usize> Visit<V> for Param<Tensor<D>> {
    fn visit_with(&self, visitor: &mut V) {
        visitor.visit_float(self);
    }
}

impl<V: ModuleVisitor, const D: usize> Visit<V> for Param<Tensor<D, Int>> {
    fn visit_with(&self, visitor: &mut V) {
        visitor.visit_int(self);
    }
}

impl<V: ModuleVisitor, const D: usize> Visit<V> for Param<Tensor<D, Bool>> {
    fn visit_with(&self, visitor: &mut V) {
        visitor.visit_bool(self);
    }
}

/// Which `map_*` of a burn mapper takes a parameter of this type.
trait MapWith<M>: Sized {
    fn map_with(self, mapper: &mut M) -> Self;
}

impl<M: ModuleMapper, const D: usize> MapWith<M> for Param<Tensor<D>> {
    fn map_with(self, mapper: &mut M) -> Self {
        mapper.map_float(self)
    }
}

impl<M: ModuleMapper, const D: usize> MapWith<M> for Param<Tensor<D, Int>> {
    fn map_with(self, mapper: &mut M) -> Self {
        mapper.map_int(self)
    }
}

impl<M: ModuleMapper, const D: usize> MapWith<M> for Param<Tensor<D, Bool>> {
    fn map_with(self, mapper: &mut M) -> Self {
        mapper.map_bool(self)
    }
}

impl<V: ModuleVisitor> ErasedVisitor for Erased<'_, V> {
    fn enter(&mut self, name: &str, container: &str) {
        self.0.enter_module(name, container);
    }
    fn exit(&mut self, name: &str, container: &str) {
        self.0.exit_module(name, container);
    }
    fn param(&mut self, param: &dyn Any) {
        // A rank above 6 is not seen (no conv or linear weight has one).
        by_rank!(param, downcast_ref_or, |p| p.visit_with(&mut *self.0), |_| ())
    }
    fn flag(&mut self, flag: &Param<Flag>) {
        self.0.visit_flag(flag);
    }
}

/// A generic burn mapper seen through [`ErasedMapper`].
struct ErasedMapperOf<'a, M>(&'a mut M);

impl<M: ModuleMapper> ErasedMapper for ErasedMapperOf<'_, M> {
    fn enter(&mut self, name: &str, container: &str) {
        self.0.enter_module(name, container);
    }
    fn exit(&mut self, name: &str, container: &str) {
        self.0.exit_module(name, container);
    }
    fn param(&mut self, param: Box<dyn Any>) -> Box<dyn Any> {
        // A rank above 6 goes back unchanged.
        by_rank!(param, downcast, |p| Box::new((*p).map_with(&mut *self.0)), |same| same)
    }
    fn flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        self.0.map_flag(flag)
    }
}

/// The user's module sees an [`ErasedVisitor`] as a burn visitor.
struct Unerased<'a>(&'a mut dyn ErasedVisitor);

impl ModuleVisitor for Unerased<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit(name, container_type);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.param(param);
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.0.param(param);
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.0.param(param);
    }
    fn visit_flag(&mut self, flag: &Param<Flag>) {
        self.0.flag(flag);
    }
}

/// The user's module sees an [`ErasedMapper`] as a burn mapper.
struct UnerasedMapper<'a>(&'a mut dyn ErasedMapper);

impl UnerasedMapper<'_> {
    fn round_trip<T: 'static>(&mut self, param: T) -> T {
        match self.0.param(Box::new(param)).downcast::<T>() {
            Ok(mapped) => *mapped,
            // ErasedMapperOf returns what it was given, mapped or not, as the same type.
            Err(_) => unreachable!("a type-erased parameter came back as another type"),
        }
    }
}

impl ModuleMapper for UnerasedMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit(name, container_type);
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.round_trip(param)
    }
    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        self.round_trip(param)
    }
    fn map_bool<const D: usize>(&mut self, param: Param<Tensor<D, Bool>>) -> Param<Tensor<D, Bool>> {
        self.round_trip(param)
    }
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        self.0.flag(flag)
    }
}

// ---- the network ----

/// One epoch of a user's burn model inside a [`super::Network`]: a burn `Module` whose
/// visitors and mappers reach the user's parameters, so every part of the engine that reads or
/// writes weights treats it as one of memscope's own architectures.
pub struct Custom {
    inner: Box<dyn DynClassifier>,
}

impl Custom {
    /// A user's module as a network (in burn's `valid()` state: BatchNorm on running
    /// statistics).
    pub fn new<M: BurnClassifier>(module: M) -> Custom {
        Custom { inner: Box::new(Module::valid(&module)) }
    }

    /// Logits `[batch, classes]` from images `[batch, c, h, w]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.inner.logits(images)
    }

    /// Whether the user's type gives its penultimate features.
    pub fn has_features(&self) -> bool {
        self.inner.has_features()
    }

    /// The penultimate features (panics with [`NO_FEATURES`] where the type gives none: check
    /// [`Self::has_features`] first, as every feature-reading study does).
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.inner.features(images).unwrap_or_else(|| panic!("{NO_FEATURES}"))
    }

    /// The head on penultimate features (panics as [`Self::features`]).
    pub fn head(&self, features: Tensor<2>) -> Tensor<2> {
        self.inner.head(features).unwrap_or_else(|| panic!("{NO_FEATURES}"))
    }

    /// This network with the weights of the burn record `record` (what `Module::save_file`
    /// writes), every parameter required with its shape.
    pub(crate) fn with_record(self, record: ModuleRecord) -> Result<Custom> {
        Ok(Custom { inner: self.inner.load(record)? })
    }
}

impl Clone for Custom {
    fn clone(&self) -> Self {
        Custom { inner: self.inner.clone_box() }
    }
}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Module for Custom {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.inner.collect_devices(devices)
    }

    fn fork(self, device: &Device) -> Self {
        Custom { inner: self.inner.fork(device) }
    }

    fn to_device(self, device: &Device) -> Self {
        Custom { inner: self.inner.to_device(device) }
    }

    fn train(self) -> Self {
        Custom { inner: self.inner.train() }
    }

    fn valid(&self) -> Self {
        Custom { inner: self.inner.valid() }
    }

    fn materialize(self) -> Self {
        Custom { inner: self.inner.materialize() }
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.inner.visit(&mut Erased(visitor));
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        Custom { inner: self.inner.map(&mut ErasedMapperOf(mapper)) }
    }
}

impl ModuleDisplayDefault for Custom {
    fn content(&self, content: Content) -> Option<Content> {
        self.inner.content(content)
    }
}

impl ModuleDisplay for Custom {}

// ---- the registry ----

type Factory = Arc<dyn Fn(&Device) -> Custom + Send + Sync>;

fn registry() -> &'static Mutex<Vec<(String, Factory)>> {
    static REGISTRY: OnceLock<Mutex<Vec<(String, Factory)>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Makes the burn type `M` known to this process under `name`: `init` builds one (its
/// weights are then replaced by each epoch's record). Registering a name again replaces it.
pub fn register<M: BurnClassifier>(name: &str, init: impl Fn(&Device) -> M + Send + Sync + 'static) {
    let factory: Factory = Arc::new(move |device| Custom::new(init(device)));
    let mut registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|(n, _)| n != name);
    registry.push((name.to_string(), factory));
}

/// A fresh network of the type registered as `name`, on `device`.
pub(crate) fn init(name: &str, device: &Device) -> Result<Custom> {
    let factory = {
        let registry = registry().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let found = registry.iter().find(|(n, _)| n == name).map(|(_, f)| f.clone());
        let known: Vec<String> = registry.iter().map(|(n, _)| n.clone()).collect();
        match found {
            Some(factory) => factory,
            None if known.is_empty() => bail!(
                "the model is the burn type '{name}' of a user's own program, which this program does not \
                 contain: open the experiment with that program (it registers the type and runs memscope; \
                 see docs/custom-burn-model.md)"
            ),
            None => bail!(
                "no burn model is registered as '{name}' in this program (registered: {})",
                known.join(", ")
            ),
        }
    };
    Ok(factory(device))
}
