/* logferry-receiver: entry point. */
#include <stdio.h>

int main(void)
{
    printf("logferry-receiver\n");
    return 0;
}
