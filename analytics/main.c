/* logferry-analytics: entry point. */
#include <stdio.h>

int main(void)
{
    printf("logferry-analytics\n");
    return 0;
}
