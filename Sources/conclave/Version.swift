import ConclaveCrypto
import ConclaveSRTP
import ConclaveSystem

/// The version of Conclave and, as each library reports it at run time, of the libraries linked in.
enum VersionReport {
    static let conclaveVersion = "0.1.0"

    static func text() -> String {
        let capabilities = (try? Capabilities.currentText()).map { "cap_get_proc ok, current \"\($0)\"" }
            ?? "cap_get_proc failed"
        return """
            conclave \(conclaveVersion)
            OpenSSL: \(OpenSSLLibrary.version)
            libsrtp2: \(SRTPLibrary.version)
            libnl: \(NetlinkLibrary.version)
            libcap: \(Capabilities.libraryDescription); \(capabilities)
            """
    }
}
