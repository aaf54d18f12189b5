internal import COpenSSL

/// Facts about the OpenSSL library linked into this binary.
public enum OpenSSLLibrary {
    /// The version string OpenSSL reports at run time (`OpenSSL_version(OPENSSL_VERSION)`).
    public static var version: String {
        String(cString: OpenSSL_version(OPENSSL_VERSION))
    }
}
