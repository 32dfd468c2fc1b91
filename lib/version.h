/* version.h: the Postern release, shown in logs and --version. */
#ifndef POSTERN_VERSION_H
#define POSTERN_VERSION_H
#define POSTERN_VERSION "0.1.0"
#endif
