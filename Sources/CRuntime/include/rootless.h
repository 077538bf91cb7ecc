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
 *
 * With neither, in the dockbuild CLI (it defines dockbuild_rootless_early_join)
 * run by an ordinary user whose holder already runs: a command that needs the
 * namespace (cruntime_rootless_needs_namespace) joins it right here, with no
 * re-exec, and main finds the host uid in cruntime_rootless_joined_uid (it
 * sets _DOCKBUILD_ROOTLESS itself: setenv here would hide argv from a static
 * Swift runtime). Anything unexpected (no holder, a runtime directory that is
 * not the user's own) leaves the process as it is: main then makes the holder
 * and re-executes with _DOCKBUILD_USERNS_JOIN, or says what is wrong.
 * DOCKBUILD_ROOTLESS_REEXEC=1 turns the early join off (bench/rootless.sh).
 */
#define CRUNTIME_USERNS_HOLD_ENV "_DOCKBUILD_USERNS_HOLD"
#define CRUNTIME_USERNS_JOIN_ENV "_DOCKBUILD_USERNS_JOIN"
#define CRUNTIME_ROOTLESS_ENV "_DOCKBUILD_ROOTLESS"

/* Whether the command words ARGV[0..ARGC) (global options first, as the CLI
 * takes them) read or write the store or containers, so an ordinary user runs
 * them in its user namespace. The one list of the commands that run as they are
 * (version, login, logout, layer, dockerfile, help, runtime, completion,
 * registry serve/gc, --help). 1 or 0. */
int cruntime_rootless_needs_namespace(int argc, const char *const *argv);

/* The host uid of a process that joined the rootless namespace before main
 * with no re-exec; -1 otherwise. */
long long cruntime_rootless_joined_uid(void);

#endif
