import Testing
@testable import ConclaveSystem

@Suite struct EthtoolNetlinkTests {
    @Test func ringChangeRequestBytes() throws {
        let bytes = try EthtoolNetlink.setRingsRequest(family: 20, link: "eth0", ["rx": 4096, "tx": 4096])
        #expect(networkHex(bytes) ==
            "34000000" + "1400" + "0500" + "00000000" + "00000000"  // nlmsghdr: length 52, family 20, REQUEST|ACK, seq, port
            + "10" + "01" + "0000"                                   // genlmsghdr: ETHTOOL_MSG_RINGS_SET, version 1, reserved
            + "1000" + "0180"                                        // ETHTOOL_A_RINGS_HEADER, NLA_F_NESTED, 16 bytes
            + "0900" + "0200" + "6574683000" + "000000"              //   ETHTOOL_A_HEADER_DEV_NAME "eth0\0", padding
            + "0800" + "0600" + "00100000"                           // ETHTOOL_A_RINGS_RX 4096
            + "0800" + "0900" + "00100000")                          // ETHTOOL_A_RINGS_TX 4096
    }

    @Test func coalesceChangeRequestBytes() throws {
        let bytes = try EthtoolNetlink.setCoalesceRequest(family: 20, link: "eth0", ["rx-usecs": .count(50), "adaptive-rx": .flag(true)])
        #expect(networkHex(bytes) ==
            "34000000" + "1400" + "0500" + "00000000" + "00000000"  // nlmsghdr: length 52, family 20, REQUEST|ACK, seq, port
            + "14" + "01" + "0000"                                   // genlmsghdr: ETHTOOL_MSG_COALESCE_SET, version 1
            + "1000" + "0180"                                        // ETHTOOL_A_COALESCE_HEADER, nested
            + "0900" + "0200" + "6574683000" + "000000"              //   ETHTOOL_A_HEADER_DEV_NAME "eth0\0"
            + "0800" + "0200" + "32000000"                           // ETHTOOL_A_COALESCE_RX_USECS 50 (u32)
            + "0500" + "0b00" + "01" + "000000")                     // ETHTOOL_A_COALESCE_USE_ADAPTIVE_RX 1 (u8), padding
    }

    @Test func ringsReplyIsParsedWithMaximums() throws {
        let channel = FakeGenericNetlinkChannel()
        // The GET request is the header nest alone (length 36). RINGS_GET_REPLY attributes: RX_MAX 256, TX_MAX 256, RX 256, TX 128, RX_MINI_MAX 0 (absent ring).
        channel.answers = [.success([networkBytes(hex: "08000200 00010000 08000300 00000000 08000500 00010000 08000600 00010000 08000900 80000000")])]
        let rings = try #require(try EthtoolNetlink(channel: channel).rings(link: "eth0"))
        #expect(rings.maximum == ["rx": 256, "tx": 256])
        #expect(rings.current == ["rx": 256, "tx": 128])
        #expect(networkHex(channel.sent[0].prefix(20)) == "24000000" + "1400" + "0500" + "00000000" + "00000000" + "0f010000")
    }

    @Test func unsupportedDeviceIsNilNotAnError() throws {
        let channel = FakeGenericNetlinkChannel()
        channel.answers = [.failure(NetlinkError("ethtool rings get veth0", errno: -95))]  // EOPNOTSUPP
        #expect(try EthtoolNetlink(channel: channel).rings(link: "veth0") == nil)
    }

    @Test func otherKernelErrorsThrow() throws {
        let channel = FakeGenericNetlinkChannel()
        channel.answers = [.failure(NetlinkError("ethtool rings get nope", errno: -19))]  // ENODEV
        #expect(throws: NetlinkError.self) { try EthtoolNetlink(channel: channel).rings(link: "nope") }
    }

    @Test func featuresReplyReadsVerboseBitsets() throws {
        func bit(_ name: String) -> String {
            var payload = Array(name.utf8) + [0]
            let length = 4 + payload.count
            while payload.count % 4 != 0 { payload.append(0) }
            let nameAttribute = networkHex([UInt8(length), 0, 2, 0]) + networkHex(payload)  // ETHTOOL_A_BITSET_BIT_NAME
            return networkHex([UInt8(4 + nameAttribute.count / 2), 0, 1, 0x80]) + nameAttribute  // ETHTOOL_A_BITSET_BITS_BIT
        }
        func bitset(_ type: UInt8, _ names: [String]) -> String {
            let bits = names.map(bit).joined()
            let inner = "04000100" + networkHex([UInt8(4 + bits.count / 2), 0, 3, 0x80]) + bits  // NOMASK, BITS
            return networkHex([UInt8(4 + inner.count / 2), 0, type, 0x80]) + inner
        }
        let reply = bitset(2, ["rx-gro", "tx-tcp-segmentation"]) + bitset(4, ["rx-gro", "rx-checksum"])  // HW, ACTIVE
        let channel = FakeGenericNetlinkChannel()
        channel.answers = [.success([networkBytes(hex: reply)])]
        let features = try #require(try EthtoolNetlink(channel: channel).features(link: "veth0"))
        #expect(features.changeable == ["rx-gro", "tx-tcp-segmentation"])
        #expect(features.active == ["rx-gro", "rx-checksum"])
    }

    @Test func errorAcknowledgementCarriesTheKernelMessage() throws {
        // NLMSG_ERROR, flags CAPPED|ACK_TLVS, seq 7: error -EINVAL, the request's header, then
        // NLMSGERR_ATTR_MSG "requested ring size exceeds maximum".
        let text = Array("requested ring size exceeds maximum".utf8) + [0]
        var message = networkBytes(hex: "00000000 0200 0003 07000000 00000000 eaffffff 34000000 14000500 07000000 00000000")
        var attribute: [UInt8] = [UInt8(4 + text.count), 0, 1, 0] + text
        while attribute.count % 4 != 0 { attribute.append(0) }
        message += attribute
        message.storeUInt32(UInt32(message.count), at: 0)
        #expect {
            _ = try NetlinkReply.parse(message, sequence: 7, operation: "ethtool rings set eth0")
        } throws: { error in
            let error = error as! NetlinkError
            return error.kernelMessage == "requested ring size exceeds maximum" && !error.isNotSupported
        }
    }

    @Test func acknowledgementEndsTheExchange() throws {
        let ack = networkBytes(hex: "24000000 0200 0001 07000000 00000000 00000000 14000000 14000500 07000000 00000000")
        #expect(try NetlinkReply.parse(ack, sequence: 7, operation: "x") == .finished([]))
    }
}

@Suite struct NetlinkReplyRobustnessTests {
    /// Truncated and garbled datagrams never trap: they end the parse or throw.
    @Test func garbageNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let ack = networkBytes(hex: "24000000 0200 0003 07000000 00000000 eaffffff 34000000 14000500 07000000 00000000")
        for _ in 0..<2000 {
            var bytes = Array(ack.prefix(Int.random(in: 0...ack.count, using: &generator)))
            for _ in 0..<Int.random(in: 0...4, using: &generator) where !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? NetlinkReply.parse(bytes, sequence: 7, operation: "fuzz")
            _ = NetlinkAttribute.parse(bytes[...]).map { ($0.nested.count, $0.u32, $0.string) }
        }
    }
}

@Suite struct RouteNetlinkRequestTests {
    @Test func rootQdiscReplaceRequestBytes() throws {
        #expect(networkHex(try RouteNetlink.rootQdiscRequest(linkIndex: 3, kind: "fq")) ==
            "2c000000" + "2400" + "0505" + "00000000" + "00000000"  // nlmsghdr: 44, RTM_NEWQDISC, REQUEST|ACK|REPLACE|CREATE
            + "00" + "00" + "0000" + "03000000" + "00000000" + "ffffffff" + "00000000"  // tcmsg: ifindex 3, handle 0, parent TC_H_ROOT
            + "0700" + "0100" + "667100" + "00")                    // TCA_KIND "fq\0", padding
    }

    @Test func linkDownRequestBytes() throws {
        let bytes = networkHex(try RouteNetlink.linkChangeRequest(index: 2, LinkAttributes(isUp: false)))
        #expect(bytes ==
            "20000000" + "1000" + "0500" + "00000000" + "00000000"  // nlmsghdr: length, RTM_NEWLINK, REQUEST|ACK, seq, pid
            + "00000000" + "02000000" + "00000000" + "01000000")    // ifinfomsg: family, index, flags, change
    }

    @Test func linkSizesRequestBytes() throws {
        let bytes = networkHex(try RouteNetlink.linkChangeRequest(index: 3, LinkAttributes(mtu: 9000, txqueuelen: 2500)))
        #expect(bytes ==
            "30000000" + "1000" + "0500" + "00000000" + "00000000"  // nlmsghdr: 48 bytes, RTM_NEWLINK, REQUEST|ACK
            + "00000000" + "03000000" + "00000000" + "00000000"     // ifinfomsg: index 3, no flag change
            + "0800" + "0400" + "28230000"                           // IFLA_MTU 9000
            + "0800" + "0d00" + "c4090000")                          // IFLA_TXQLEN 2500
    }

    @Test func rootQdiscDeleteRequestBytes() throws {
        #expect(networkHex(try RouteNetlink.rootQdiscRequest(linkIndex: 3, kind: nil)) ==
            "24000000" + "2500" + "0500" + "00000000" + "00000000"  // nlmsghdr: 36, RTM_DELQDISC, REQUEST|ACK
            + "00000000" + "03000000" + "00000000" + "ffffffff" + "00000000")
    }
}

@Suite struct EthtoolWithoutFamilyTests {
    final class NoEthtoolChannel: GenericNetlinkChannel {
        func familyIdentifier(named name: String) throws -> UInt16 { throw NetlinkError("genl_ctrl_resolve \(name)", code: -12) }  // NLE_OBJ_NOTFOUND
        func exchange(_ request: [UInt8], operation: String) throws -> [[UInt8]] { Issue.record("sent a request"); return [] }
    }

    @Test func kernelWithoutEthtoolNetlinkSupportsNothing() throws {
        let ethtool = EthtoolNetlink(channel: NoEthtoolChannel())
        #expect(try ethtool.rings(link: "eth0") == nil)
        #expect(try ethtool.features(link: "eth0") == nil)
    }
}
