/* Temp-directory helpers shared by unit tests that work on real files. */
#ifndef ADX_UNIT_TMP_H
#define ADX_UNIT_TMP_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Remove `p` and everything below it; never follows symlinks (lstat), so a
 * link planted by a test cannot take the removal outside the temp dir. */
static inline void rm_tree(const char *p)
{
    struct stat st;
    if (lstat(p, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(p);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char q[1024];
            if (snprintf(q, sizeof q, "%s/%s", p, de->d_name) < (int)sizeof q) rm_tree(q);
        }
        if (d) closedir(d);
        rmdir(p);
    } else {
        unlink(p);
    }
}

#endif
