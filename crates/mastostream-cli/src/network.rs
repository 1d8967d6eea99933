//! `--cacert` and `--proxy`: how `stream` and `health` reach the network.

use mastostream::ClientBuilder;

use crate::cli::NetworkArgs;

/// `builder` with the CA files added and the proxy chosen; an error names
/// the file that cannot be read.
pub fn apply(args: &NetworkArgs, mut builder: ClientBuilder) -> Result<ClientBuilder, String> {
    for path in &args.cacert {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the --cacert file {}: {e}", path.display()))?;
        builder = builder.add_root_certificates_pem(pem);
    }
    match args.proxy.as_deref().map(str::trim) {
        None => {}
        Some("") => builder = builder.no_proxy(),
        Some(url) => builder = builder.proxy(url),
    }
    Ok(builder)
}
