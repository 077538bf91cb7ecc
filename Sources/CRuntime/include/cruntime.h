#ifndef CRUNTIME_H
#define CRUNTIME_H
/* The runtime's pre-thread work (namespaces, before any Swift thread exists). */
int cruntime_version(void);
#endif
