#ifndef CRUNTIME_ROOTLESS_H
#define CRUNTIME_ROOTLESS_H
/*
 * Rootless dockbuild's user namespace, set up before main (joining a user
 * namespace needs a single-threaded process, which a Swift process is not).
 *
 * _DOCKBUILD_USERNS_HOLD="IN,OUT" (two inherited pipe fds): the process
 *   becomes the holder of a new user + mount namespace. It unshares both,
 *   writes 'U' on OUT, waits for 'M' on IN (its parent has written the id
 *   maps with newuidmap/newgidmap), writes 'R' and then sleeps until killed.
 *   On failure it writes 'E' and a 4-byte errno, then exits.
 *
 * _DOCKBUILD_USERNS_JOIN=PID: the process joins the user and mount namespaces
 *   of the holder PID, keeps its working directory and goes on into main
 *   with _DOCKBUILD_ROOTLESS set to its host uid.
 */
#define CRUNTIME_USERNS_HOLD_ENV "_DOCKBUILD_USERNS_HOLD"
#define CRUNTIME_USERNS_JOIN_ENV "_DOCKBUILD_USERNS_JOIN"
#define CRUNTIME_ROOTLESS_ENV "_DOCKBUILD_ROOTLESS"

#endif
