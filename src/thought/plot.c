/* thought/plot.c — owns the Figure-3 SVG: two t-SNE panels (before / after Thought Space training) of
 * behaviour anchors, their positive rationales (linked to the anchor) and one negative rationale each. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/thought.h"

#define PANEL_W 520
#define PANEL_H 520
#define MARGIN 30
#define TOP 60

static void svg_escape(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static void panel(FILE *f, const float *xy, int n, double x0, const char *title) {
    int total = 3 * n;
    float minx = xy[0], maxx = xy[0], miny = xy[1], maxy = xy[1];
    for (int i = 1; i < total; i++) {
        float x = xy[2 * i], y = xy[2 * i + 1];
        if (x < minx) minx = x;
        if (x > maxx) maxx = x;
        if (y < miny) miny = y;
        if (y > maxy) maxy = y;
    }
    double sx = (PANEL_W - 2 * MARGIN) / (double)(maxx > minx ? maxx - minx : 1);
    double sy = (PANEL_H - 2 * MARGIN) / (double)(maxy > miny ? maxy - miny : 1);
#define PX(i) (x0 + MARGIN + (xy[2 * (i)] - minx) * sx)
#define PY(i) (TOP + MARGIN + (maxy - xy[2 * (i) + 1]) * sy)
    fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" stroke=\"#999\"/>\n", x0,
            TOP, PANEL_W, PANEL_H);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"16\" text-anchor=\"middle\">", x0 + PANEL_W / 2.0,
            TOP - 10);
    svg_escape(f, title);
    fputs("</text>\n<g stroke=\"#2ca02c\" stroke-opacity=\"0.35\" stroke-width=\"0.8\">\n", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(i), PY(i), PX(n + i),
                PY(n + i));
    fputs("</g>\n<g fill=\"#d62728\" fill-opacity=\"0.6\">\n", f);
    for (int i = 2 * n; i < 3 * n; i++)
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"5\" height=\"5\"/>\n", PX(i) - 2.5, PY(i) - 2.5);
    fputs("</g>\n<g fill=\"#2ca02c\" fill-opacity=\"0.75\">\n", f);
    for (int i = n; i < 2 * n; i++) fprintf(f, "<path d=\"M%.1f %.1fl3 5h-6z\"/>\n", PX(i), PY(i) - 3.0);
    fputs("</g>\n<g fill=\"#1f77b4\" fill-opacity=\"0.8\">\n", f);
    for (int i = 0; i < n; i++) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.8\"/>\n", PX(i), PY(i));
    fputs("</g>\n", f);
#undef PX
#undef PY
}

pulse_status pulse_thought_plot_svg(const char *path, const float *xy_before, const float *xy_after, int n,
                                    const char *title_before, const char *title_after, const char *caption) {
    if (n < 1) return pulse_set_error(PULSE_ERR_ARG, "plot: need at least one anchor");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return pulse_set_error(PULSE_ERR_NOMEM, "plot: cannot allocate the SVG buffer");
    int W = 2 * PANEL_W + 3 * MARGIN, H = TOP + PANEL_H + 70;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fafafa\"/>\n",
            W, H, W, H);
    panel(f, xy_before, n, MARGIN, title_before ? title_before : "before training");
    panel(f, xy_after, n, 2 * MARGIN + PANEL_W, title_after ? title_after : "after training");
    int ly = TOP + PANEL_H + 25;
    fprintf(f,
            "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#1f77b4\"/><text x=\"%d\" y=\"%d\" "
            "font-size=\"13\">behaviour "
            "(anchor)</text>\n",
            MARGIN + 10, ly, MARGIN + 20, ly + 4);
    fprintf(
        f,
        "<path d=\"M%d %dl4 7h-8z\" fill=\"#2ca02c\"/><text x=\"%d\" y=\"%d\" font-size=\"13\">own rationale "
        "(positive, linked)</text>\n",
        MARGIN + 170, ly - 4, MARGIN + 180, ly + 4);
    fprintf(f,
            "<rect x=\"%d\" y=\"%d\" width=\"7\" height=\"7\" fill=\"#d62728\"/><text x=\"%d\" y=\"%d\" "
            "font-size=\"13\">another user's rationale (negative)</text>\n",
            MARGIN + 390, ly - 4, MARGIN + 402, ly + 4);
    if (caption) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#444\">", MARGIN, ly + 28);
        svg_escape(f, caption);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return pulse_set_error(PULSE_ERR_IO, "plot: writing the SVG buffer failed");
    }
    pulse_status st = pulse_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}
