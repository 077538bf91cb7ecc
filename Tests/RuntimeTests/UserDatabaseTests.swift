import Testing
@testable import Runtime

/// The one home of docker's user rules (`USER`, `-u`, `--chown`, `unpack --bundle`).
@Suite struct UserDatabaseTests {
    let db = UserDatabase(passwd: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
                          group: "root:x:0:\nstaff:x:50:app,other\napps:x:1001:\nwheel:x:10:root,app\n")

    @Test func resolvesAsDocker() throws {
        #expect(try db.resolve("") == .init(uid: 0, gid: 0, name: "root"))
        #expect(try db.resolve("app") == .init(uid: 1000, gid: 1001, name: "app"))
        #expect(try db.resolve("1000") == .init(uid: 1000, gid: 1001, name: "app"), "a uid takes its primary group from /etc/passwd")
        #expect(try db.resolve("4242") == .init(uid: 4242, gid: 0, name: nil), "a uid not in /etc/passwd: gid 0")
        #expect(try db.resolve("4242", chownRule: true).gid == 4242, "COPY --chown=UID: the same number")
        #expect(try db.resolve("app:staff") == .init(uid: 1000, gid: 50, name: "app"))
        #expect(try db.resolve("app:7") == .init(uid: 1000, gid: 7, name: "app"))
        #expect(try db.resolve("0:wheel").gid == 10)
        #expect(throws: UserDatabase.Failure.noSuchUser("ghost")) { try db.resolve("ghost") }
        #expect(throws: UserDatabase.Failure.noSuchGroup("ghosts")) { try db.resolve("app:ghosts") }
        #expect("\(UserDatabase.Failure.noSuchUser("ghost"))".contains("is not in the image's /etc/passwd"))
    }

    @Test func groups() {
        #expect(db.memberGroups(of: "app") == [50, 10])
        #expect(db.memberGroups(of: "nobody").isEmpty)
        #expect(db.groupID("staff") == 50 && db.groupID("77") == 77 && db.groupID("none") == nil)
        // malformed lines are skipped, never a crash
        let odd = UserDatabase(passwd: "broken\n::\nx:x:notanumber:1::/:\n", group: ":::\n")
        #expect(throws: UserDatabase.Failure.noSuchUser("x")) { try odd.resolve("x") }
        #expect(odd.memberGroups(of: "x").isEmpty)
    }
}
