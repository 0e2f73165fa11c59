//! Minimal ABI modules hand-written in WAT, varied one aspect at a time.

/// The parts of a hand-written module that tests vary.
pub struct Wat {
    pub version: i32,
    pub imports: &'static str,
    pub describe: &'static str,
    pub alloc: &'static str,
    pub evaluate: bool,
}

impl Default for Wat {
    fn default() -> Self {
        Self {
            version: 1,
            imports: "",
            describe: r#"{"abi":1,"rules":[{"name":"r"}]}"#,
            alloc: "(func (export \"tollgate_alloc\") (param i32) (result i32) (local i32)
                global.get $next local.set 1
                global.get $next local.get 0 i32.add global.set $next
                local.get 1)",
            evaluate: true,
        }
    }
}

/// Where the constant documents live in the module's memory.
const DESCRIBE_AT: u64 = 16;
const VALID_AT: u64 = 512;
const VALID: &str = r#"{"valid":true}"#;
const ALLOWED_AT: u64 = 768;
const ALLOWED: &str = r#"{"allowed":true,"warnings":["from wat"]}"#;
/// The v2 answer to a bundle of one.
const ALLOWED_V2: &str = r#"{"verdicts":[{"allowed":true,"warnings":["from wat"]}]}"#;

fn packed(at: u64, text: &str) -> i64 {
    ((at << 32) | text.len() as u64) as i64
}

fn data(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

impl Wat {
    pub fn text(&self) -> String {
        // v1 takes (rule, request, settings); v2 (request, rules).
        let (params, allowed) = match self.version {
            2 => ("i32 i32 i32 i32", ALLOWED_V2),
            _ => ("i32 i32 i32 i32 i32 i32", ALLOWED),
        };
        let evaluate = if self.evaluate {
            format!(
                "(func (export \"tollgate_evaluate\") (param {params}) (result i64) i64.const {})",
                packed(ALLOWED_AT, allowed)
            )
        } else {
            String::new()
        };
        format!(
            r#"(module
  {imports}
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (data (i32.const {DESCRIBE_AT}) "{describe_data}")
  (data (i32.const {VALID_AT}) "{valid_data}")
  (data (i32.const {ALLOWED_AT}) "{allowed_data}")
  (func (export "tollgate_abi_version") (result i32) i32.const {version})
  {alloc}
  (func (export "tollgate_describe") (result i64) i64.const {describe})
  (func (export "tollgate_validate_settings") (param i32 i32 i32 i32) (result i64) i64.const {valid})
  {evaluate}
)"#,
            imports = self.imports,
            describe_data = data(self.describe),
            valid_data = data(VALID),
            allowed_data = data(allowed),
            version = self.version,
            alloc = self.alloc,
            describe = packed(DESCRIBE_AT, self.describe),
            valid = packed(VALID_AT, VALID),
        )
    }

    pub fn wasm(&self) -> Vec<u8> {
        wat::parse_str(self.text()).expect("valid WAT")
    }
}
