/*
 * replay_main.c - runs a libFuzzer harness without libFuzzer, over its committed files.
 *
 * `make test` builds every tests/fuzz/fuzz_<name>.c with gcc against this driver. The harness
 * names its folders in segloss_fuzz_corpus_dirs (NULL-terminated). Every file in them is fed
 * to LLVMFuzzerTestOneInput from an exactly sized heap copy (so a sanitizer build catches any
 * read past the end); returning counts as a pass, a crash ends the program. Files under a
 * tests/crashers/ folder must also fail to decode: segloss_fuzz_decode must return a negative
 * code for them, otherwise that file fails. A folder that is missing or empty is a failure too,
 * so a renamed corpus cannot silently test nothing.
 *
 * With arguments, replays exactly those files (handy for one reproducer) and ignores the list.
 * Prints "N passed, N failed" last, like every segloss test program.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

extern const char *const segloss_fuzz_corpus_dirs[];
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int segloss_fuzz_decode(const uint8_t *data, size_t size);

static int passed, failed;

/* The whole file in a malloc'd buffer of exactly its size; NULL on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(size > 0 ? (size_t)size : 1);
        if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)size;
    }
    fclose(f);
    return buf;
}

static void replay_one(const char *path, int must_fail)
{
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) {
        printf("FAIL %s: cannot read\n", path);
        failed++;
        return;
    }
    LLVMFuzzerTestOneInput(buf, len);
    if (must_fail) {
        int rc = segloss_fuzz_decode(buf, len);
        if (rc >= 0) {
            printf("FAIL %s: a crasher decoded successfully (it must be refused)\n", path);
            failed++;
            free(buf);
            return;
        }
    }
    free(buf);
    passed++;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_dir(const char *dir)
{
    int must_fail = strncmp(dir, "tests/crashers/", 15) == 0 || strstr(dir, "/crashers/");
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;

    if (!d) {
        printf("FAIL %s: folder missing\n", dir);
        failed++;
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    if (count == 0) {
        printf("FAIL %s: folder empty\n", dir);
        failed++;
    }
    qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            replay_one(path, must_fail);
        free(names[i]);
    }
    free(names);
    printf("     %s: replayed %zu files%s\n", dir, count, must_fail ? " (all must fail)" : "");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            replay_one(argv[i], strstr(argv[i], "crashers/") != NULL);
    } else {
        for (size_t i = 0; segloss_fuzz_corpus_dirs[i]; i++)
            replay_dir(segloss_fuzz_corpus_dirs[i]);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
