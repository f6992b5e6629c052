/* fit.c — placeholder */
