/*
 * test_msgheaders.c: unit tests of lib/msgheaders.c: reading a message's first bytes from a
 * descriptor at an offset, and finding Delivered-To: in its header section only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msgheaders.h"
#include "t.h"

static bool dt(const char *hdr, const char *addr)
{
	return msgheaders_delivered_to(hdr, strlen(hdr), addr);
}

static void test_delivered_to(void)
{
	T_CHECK(dt("Delivered-To: alice@example.org\r\nSubject: x\r\n\r\nbody\r\n",
		   "alice@example.org"));
	T_CHECK(dt("Subject: x\r\ndelivered-to:   <ALICE@Example.org>  \r\n\r\n",
		   "alice@example.org"));
	T_CHECK(dt("Delivered-To: bob@x\nDelivered-To: alice@x\n\n", "alice@x"));
	T_CHECK(!dt("Delivered-To: alice@example.org.evil\r\n\r\n", "alice@example.org"));
	T_CHECK(!dt("X-Delivered-To: alice@x\r\n\r\n", "alice@x"));
	/* In the body it is no header. */
	T_CHECK(!dt("Subject: x\r\n\r\nDelivered-To: alice@x\r\n", "alice@x"));
	T_CHECK(!dt("", "alice@x"));
}

static void test_read(void)
{
	char path[] = "/tmp/test_msgheaders.XXXXXX";
	int fd = mkstemp(path);
	char *out = NULL;
	size_t len = 0;

	T_CHECK(fd >= 0);
	T_CHECK(write(fd, "junkSubject: hi\r\n\r\nbody", 23) == 23);
	T_EQ_INT(msgheaders_read(fd, 4, 19, 1000, &out, &len), 0);
	T_EQ_INT(len, 19);
	T_EQ_STR(out, "Subject: hi\r\n\r\nbody");
	free(out);
	T_EQ_INT(msgheaders_read(fd, 4, 19, 7, &out, &len), 0);	/* bounded by max */
	T_EQ_STR(out, "Subject");
	free(out);
	errno = 0;
	T_EQ_INT(msgheaders_read(fd, 4, 100, 1000, &out, &len), -1);	/* file ends early */
	T_EQ_INT(errno, EIO);
	close(fd);
	unlink(path);
}

int main(void)
{
	T_RUN(test_delivered_to);
	T_RUN(test_read);
	return T_DONE();
}
