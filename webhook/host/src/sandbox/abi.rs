//! Load-time checks of a module against its ABI version
//! (`policies-wasm/ABI.md`): imports, exports and their signatures.

use wasmtime::{ExternType, FuncType, Module, ModuleExport, ValType};

use crate::evaluation::{AbiVersion, EvalError};

/// "1 or 2", for messages naming the versions this host speaks.
pub fn supported_versions() -> String {
    let numbers: Vec<String> = AbiVersion::ALL
        .iter()
        .map(|v| v.number().to_string())
        .collect();
    numbers.join(" or ")
}

/// `tollgate_evaluate`'s signature in `version`.
fn evaluate_signature(version: AbiVersion) -> Signature {
    match version {
        AbiVersion::V1 => (&[I32, I32, I32, I32, I32, I32], &[I64]),
        AbiVersion::V2 => (&[I32, I32, I32, I32], &[I64]),
    }
}

/// The module every permitted import comes from.
pub const IMPORT_MODULE: &str = "tollgate";

/// Why a module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("not a valid WebAssembly module: {0}")]
    Compile(String),
    #[error(
        "imports {module}.{name}, which Tollgate does not provide (only tollgate.lookup and tollgate.log; no WASI)"
    )]
    ForbiddenImport { module: String, name: String },
    #[error("ABI: missing export `{0}`")]
    MissingExport(&'static str),
    #[error("ABI: export `{name}` must be {expected}, found {found}")]
    WrongSignature {
        name: String,
        expected: String,
        found: String,
    },
    #[error(
        "speaks Tollgate ABI version {found}, but this host speaks version {}",
        supported_versions()
    )]
    AbiVersion { found: i32 },
    #[error("tollgate_abi_version says {version}, but tollgate_describe says abi {described}")]
    AbiMismatch { version: i32, described: i32 },
    #[error("{call} failed: {error}")]
    Call {
        call: &'static str,
        error: EvalError,
    },
    #[error("{call} returned an invalid document: {message}")]
    Document { call: &'static str, message: String },
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
}

/// `(params, results)` of a function signature.
type Signature = (&'static [ValType], &'static [ValType]);

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// The imports a module may have.
const IMPORTS: &[(&str, Signature)] = &[
    ("lookup", (&[I32, I32], &[I64])),
    ("log", (&[I32, I32, I32], &[])),
];

pub const VERSION: &str = "tollgate_abi_version";
pub const ALLOC: &str = "tollgate_alloc";
pub const DESCRIBE: &str = "tollgate_describe";
pub const VALIDATE_SETTINGS: &str = "tollgate_validate_settings";
pub const EVALUATE: &str = "tollgate_evaluate";
pub const MEMORY: &str = "memory";

/// The exports every version shares (`tollgate_evaluate` differs).
const EXPORTS: &[(&str, Signature)] = &[
    (VERSION, (&[], &[I32])),
    (ALLOC, (&[I32], &[I32])),
    (DESCRIBE, (&[], &[I64])),
    (VALIDATE_SETTINGS, (&[I32, I32, I32, I32], &[I64])),
];

/// Export indices resolved once per module, so evaluations skip the
/// by-name lookups.
#[derive(Clone)]
pub struct Exports {
    pub memory: ModuleExport,
    pub alloc: ModuleExport,
    pub describe: ModuleExport,
    pub validate_settings: ModuleExport,
    pub evaluate: ModuleExport,
}

/// Refuses any import but `tollgate.lookup`/`tollgate.log` with their
/// documented signatures.
pub fn check_imports(module: &Module) -> Result<(), ModuleError> {
    for import in module.imports() {
        let allowed = (import.module() == IMPORT_MODULE)
            .then(|| IMPORTS.iter().find(|(name, _)| *name == import.name()))
            .flatten();
        let Some((name, signature)) = allowed else {
            return Err(ModuleError::ForbiddenImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        };
        check_signature(
            &format!("{IMPORT_MODULE}.{name} (import)"),
            import.ty(),
            *signature,
        )?;
    }
    Ok(())
}

/// Checks `tollgate_abi_version` alone: read before anything else, so a
/// module of another ABI version is refused for its version, not for
/// whatever else differs.
pub fn version_export(module: &Module) -> Result<ModuleExport, ModuleError> {
    export(module, VERSION, Some(EXPORTS[0].1))
}

/// Checks every other export against `version` and resolves their indices.
pub fn exports(module: &Module, version: AbiVersion) -> Result<Exports, ModuleError> {
    let signature = |name: &str| EXPORTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s);
    let func = |name: &'static str| export(module, name, signature(name));
    Ok(Exports {
        memory: export(module, MEMORY, None)?,
        alloc: func(ALLOC)?,
        describe: func(DESCRIBE)?,
        validate_settings: func(VALIDATE_SETTINGS)?,
        evaluate: export(module, EVALUATE, Some(evaluate_signature(version)))?,
    })
}

/// One export: a function of `signature`, or the memory when `None`.
fn export(
    module: &Module,
    name: &'static str,
    signature: Option<Signature>,
) -> Result<ModuleExport, ModuleError> {
    let ty = module
        .get_export(name)
        .ok_or(ModuleError::MissingExport(name))?;
    match signature {
        Some(signature) => check_signature(name, ty, signature)?,
        None => match ty {
            ExternType::Memory(memory) if !memory.is_64() && !memory.is_shared() => {}
            other => {
                return Err(ModuleError::WrongSignature {
                    name: name.to_owned(),
                    expected: "a 32-bit unshared memory".to_owned(),
                    found: describe_extern(&other),
                });
            }
        },
    }
    module
        .get_export_index(name)
        .ok_or(ModuleError::MissingExport(name))
}

fn check_signature(
    name: &str,
    ty: ExternType,
    (params, results): Signature,
) -> Result<(), ModuleError> {
    let matches = |f: &FuncType| {
        f.params().len() == params.len()
            && f.results().len() == results.len()
            && f.params().zip(params).all(|(a, b)| ValType::eq(&a, b))
            && f.results().zip(results).all(|(a, b)| ValType::eq(&a, b))
    };
    match &ty {
        ExternType::Func(f) if matches(f) => Ok(()),
        other => Err(ModuleError::WrongSignature {
            name: name.to_owned(),
            expected: format!("func {params:?} -> {results:?}"),
            found: describe_extern(other),
        }),
    }
}

fn describe_extern(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => format!(
            "func {:?} -> {:?}",
            f.params().collect::<Vec<_>>(),
            f.results().collect::<Vec<_>>()
        ),
        ExternType::Memory(_) => "a memory".to_owned(),
        ExternType::Table(_) => "a table".to_owned(),
        ExternType::Global(_) => "a global".to_owned(),
        ExternType::Tag(_) => "a tag".to_owned(),
    }
}
