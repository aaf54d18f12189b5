import ConclaveUpdate

/// Any text either throws or gives a manifest whose single image, written back by our builder's
/// writer, parses to the same values.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzManifestText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let manifest = try? Manifest(parsing: input), manifest.images.count == 1 else { return 0 }
    let lineSafe = [manifest.compatible, manifest.description ?? "", manifest.build ?? ""].allSatisfy { !$0.contains("\n") && !$0.contains("\r") }
    guard lineSafe, manifest.format == "plain" else { return 0 }
    let text = Manifest.text(
        compatible: manifest.compatible, version: manifest.version, description: manifest.description, build: manifest.build,
        image: manifest.images[0])
    let again = try? Manifest(parsing: Array(text.utf8))
    precondition(again?.images == manifest.images && again?.version == manifest.version, "manifest round-trips")
    return 0
}
