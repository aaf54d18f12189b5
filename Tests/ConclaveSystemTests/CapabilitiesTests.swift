import Glibc
import Testing
@testable import ConclaveSystem

@Suite struct CapabilitiesTests {
    @Test func readsTheCurrentProcessCapabilities() throws {
        let text = try Capabilities.currentText()
        // libcap's text form always starts with "=" (no capabilities) or names a set.
        #expect(text.hasPrefix("=") || text.hasPrefix("cap_"))
        if geteuid() == 0 {
            #expect(text.contains("ep"), "root should hold effective and permitted capabilities: \(text)")
        }
    }
}
