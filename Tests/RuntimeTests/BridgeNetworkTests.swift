import Foundation
import Testing
@testable import Runtime

/// The bridge network's pure parts: the resolv.conf a separate namespace gets, and the names
/// of attachments.
@Suite("BridgeNetwork")
struct BridgeNetworkTests {
    @Test func loopbackNameServersAreDroppedWithPublicFallback() {
        // systemd-resolved's stub: unreachable from another namespace
        let stub = ResolvConf.forNamespace(hostText: "# managed\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n")
        #expect(stub == "# managed\noptions edns0 trust-ad\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")
        // a real server is kept, loopback ones next to it go, no fallback added
        let mixed = ResolvConf.forNamespace(hostText: "nameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver ::1\n")
        #expect(mixed == "nameserver 10.0.0.2\n")
        // nothing at all: the fallback
        #expect(ResolvConf.forNamespace(hostText: "") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    }

    @Test func namesAreDistinctForBuildAndContainerAttachments() {
        // a container id is hex; a build step's id starts with "bld": names never collide
        #expect(BridgeNetwork.netnsName("bld0123456789") == "dockbuild-bld012345678")
        #expect(BridgeNetwork.vethName("bld0123456789") == "vethbld01234")
        #expect(BridgeNetwork.netnsName(String(repeating: "a", count: 64)) == "dockbuild-" + String(repeating: "a", count: 12))
        #expect(BridgeNetwork.vethName("bld0123456789").utf8.count <= 15)
    }

    @Test func macAddressFollowsTheAddress() {
        // docker's layout: 02:42 and the four octets, so an address keeps its MAC across restarts
        #expect(BridgeNetwork.macAddress("10.90.0.3") == "02:42:0a:5a:00:03")
        #expect(BridgeNetwork.macAddress("172.17.255.254") == "02:42:ac:11:ff:fe")
        // the interfaces attachMore adds stay within IFNAMSIZ
        #expect((BridgeNetwork.vethName(String(repeating: "f", count: 64)) + "9").utf8.count <= 15)
    }
}
