/* logferry-monitor: entry point. */
#include <stdio.h>

int main(void)
{
    printf("logferry-monitor\n");
    return 0;
}
