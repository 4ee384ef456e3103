//! What several fuzz targets share.

/// One current-thread runtime per fuzzing process, for the targets that
/// drive async parsers (request bodies are in memory, so nothing waits).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"))
}
