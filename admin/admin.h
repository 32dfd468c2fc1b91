/*
 * admin.h: subcommands of the postern administration command.
 */
#ifndef POSTERN_ADMIN_H
#define POSTERN_ADMIN_H

int cmd_check(int argc, char **argv);

#endif
