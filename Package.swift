// swift-tools-version:6.1
import PackageDescription

// libsrtp2 is built by scripts/bootstrap into .deps/ (static, against OpenSSL).
let depsLibrary = Context.packageDirectory + "/.deps/lib"

let package = Package(
    name: "conclave",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "conclave", targets: ["conclave"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // Thin C modules: one per library, module map + umbrella header.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl"),
        .systemLibrary(name: "CSRTP"),
        .systemLibrary(name: "CNetlink", pkgConfig: "libnl-genl-3.0"),
        .systemLibrary(name: "CCap"),
        .systemLibrary(name: "CZlib"),

        // Swift wrappers: each imports its C module internally, so no C type leaks.
        .target(name: "CConclaveOpenSSLShims"),
        .target(
            name: "ConclaveCrypto",
            dependencies: [
                "COpenSSL", "CConclaveOpenSSLShims", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
        .target(
            name: "ConclavePKI",
            dependencies: ["ConclaveCrypto", "ConclaveSystem", .product(name: "SystemPackage", package: "swift-system")]),
        .target(
            name: "ConclaveSRTP", dependencies: ["CSRTP", "COpenSSL"],
            linkerSettings: [.unsafeFlags(["-L" + depsLibrary])]),
        .target(name: "CConclaveSystemShims"),
        .target(
            name: "ConclaveSystem",
            dependencies: [
                "CNetlink", "CCap", "CConclaveSystemShims", "ConclaveWire",
                .product(name: "SystemPackage", package: "swift-system"), .product(name: "Logging", package: "swift-log"),
            ]),

        // Pure codecs: no I/O, no dependencies, fuzzed.
        .target(name: "ConclaveWire"),

        // The media plane: forwarding threads over recvmmsg/sendmmsg, TCP fallback over NIO.
        .target(name: "CConclaveSocket"),
        .target(
            name: "ConclaveRelay",
            dependencies: [
                "CConclaveSocket", "ConclaveWire", "ConclaveSRTP", "ConclaveCrypto", "ConclaveSystem",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),

        // Registered users, guest visits, the audit log (SQLite through GRDB), join tokens, login throttling.
        .target(
            name: "ConclaveIdentity",
            dependencies: [
                "ConclaveCrypto", "ConclaveSystem", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),

        // SIP ingress: messages, SDP offer/answer, SDES, digest auth, transactions. Pure values, fuzzed.
        .target(name: "ConclaveSIP", dependencies: ["ConclaveCrypto"]),

        // The control plane: legs and keys for the relay (joins, API and monitoring follow).
        .target(
            name: "ConclaveControl",
            dependencies: [
                "ConclaveCrypto", "ConclaveIdentity", "ConclaveRelay", "ConclaveSIP", "ConclaveSRTP", "ConclaveSystem", "ConclaveWire",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]),

        // The serial/TTY console: line editor, status screen, login, first-boot wizard, menus.
        .target(
            name: "ConclaveConsole",
            dependencies: ["ConclaveCrypto", "ConclavePKI", "ConclaveSystem", .product(name: "SystemPackage", package: "swift-system")]),

        // Signed updates: RAUC bundle reader and verifier, A/B slots, boot state, installer.
        .target(
            name: "ConclaveUpdate",
            dependencies: ["CZlib", "ConclaveCrypto", "ConclaveSystem", .product(name: "SystemPackage", package: "swift-system")]),

        .executableTarget(
            name: "conclave",
            dependencies: [
                "ConclaveCrypto", "ConclaveSRTP", "ConclaveSystem", "ConclaveWire", "ConclaveRelay", "ConclaveControl", "ConclaveUpdate",
                "ConclaveIdentity", .product(name: "Logging", package: "swift-log"),
                "ConclavePKI", "ConclaveConsole", .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(
            name: "ConclaveCryptoTests",
            dependencies: [
                "ConclaveCrypto", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "ConclavePKITests", dependencies: ["ConclavePKI", "ConclaveCrypto", "ConclaveSystem"]),
        .testTarget(name: "ConclaveSRTPTests", dependencies: ["ConclaveSRTP"]),
        .testTarget(name: "ConclaveConsoleTests", dependencies: ["ConclaveConsole", "ConclavePKI", "ConclaveCrypto", "ConclaveSystem"]),
        .testTarget(name: "ConclaveSystemTests", dependencies: ["ConclaveSystem", "ConclaveWire"]),
        .testTarget(name: "ConclaveWireTests", dependencies: ["ConclaveWire"]),
        .testTarget(
            name: "ConclaveUpdateTests", dependencies: ["ConclaveUpdate", "ConclaveCrypto", "ConclaveSystem"], exclude: ["Fixtures"]),
        .testTarget(name: "ConclaveRelayTests", dependencies: ["ConclaveRelay", "ConclaveSRTP", "ConclaveWire"]),
        .testTarget(name: "ConclaveIdentityTests", dependencies: ["ConclaveIdentity", "ConclaveCrypto", "ConclaveSystem"]),
        .testTarget(name: "ConclaveSIPTests", dependencies: ["ConclaveSIP", "ConclaveCrypto"]),
        .testTarget(
            name: "ConclaveControlTests",
            dependencies: [
                "ConclaveControl", "ConclaveRelay", "ConclaveSIP", "ConclaveSRTP", .product(name: "NIOEmbedded", package: "swift-nio"),
            ]),
    ]
)
