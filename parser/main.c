/* logferry-parser: entry point. */
#include <stdio.h>

int main(void)
{
    printf("logferry-parser\n");
    return 0;
}
